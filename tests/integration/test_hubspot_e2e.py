"""HubSpot end to end: a real worker, the real broker, the real hubspot-api-client against FakeHubSpot.

A contact created in the fake portal reaches the worker as a signed webhook, becomes a lead,
turns hot on web activity and texts its owner; the rep's "1" logs a call and the post-meeting
answers become deal properties — written to the portal exactly once although HubSpot is down
when they are given and the worker is SIGKILLed in the middle of creating the call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot import MARKER
from tests.fakes.hubspot_server import FakeHubSpot
from tests.fakes.threaded import served
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_conversation import DEBRIEF, REP_PHONE, rep, rows, twilio_env, until
from tests.integration.test_pipeline import at

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OWNER = "77"


def web_burst(email: str) -> list[dict[str, Any]]:
    """Intent the points scorer rates hot (as in test_pipeline.hot_lead_events)."""
    kinds = [
        ("page.viewed", {"path": "/pricing"}),
        ("page.viewed", {"path": "/pricing/enterprise"}),
        ("form.submitted", {"form": "demo-request"}),
        ("page.viewed", {"path": "/pricing"}),
    ]
    return [
        {
            "event_id": f"w{i}",
            "type": t,
            "occurred_at": at(5 + 3 * i),
            "source": "web",
            "email": email,
            **extra,
        }
        for i, (t, extra) in enumerate(kinds)
    ]


def field_map(tmp_path: Path, system: str, owner: str) -> Path:
    """The field map Nudge ships for ``system``, with the CRM's owner ``owner`` as rep-1."""
    path = tmp_path / f"{system}_fields.yaml"
    shipped = (ROOT / f"connectors/{system}_fields.yaml").read_text()
    path.write_text(shipped.replace("owners: {}", f'owners: {{"{owner}": rep-1}}'))
    return path


async def test_contact_to_nudge_and_answers_back_exactly_once(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Portal contact → lead → hot → text; answers + logged call land in the portal once, through an outage and a SIGKILL."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "debrief.yaml").write_text(DEBRIEF)
    (playbooks / "hot-lead.yaml").write_text((ROOT / "playbooks/default/hot-lead.yaml").read_text())
    fmap = field_map(tmp_path, "hubspot", OWNER)
    with served(FakeHubSpot()) as portal:
        env = dict(
            NUDGE_PLAYBOOKS=str(playbooks),
            **twilio_env(twilio_fake),
            HUBSPOT_ACCESS_TOKEN=portal.access_token,
            HUBSPOT_CLIENT_SECRET=portal.client_secret,
            NUDGE_HUBSPOT_API_URL=portal.url,
            NUDGE_HUBSPOT_FIELD_MAP=str(fmap),
        )
        # a contact that was in the portal before Nudge was connected
        early = portal.add(
            "contacts",
            {"email": "early@old.example", "company": "Early Co", "hubspot_owner_id": OWNER},
        )
        worker = start_worker(**env)
        status, body = worker.post_events([rep()])
        assert status == 200, body

        # 1. a contact and its deal are created in the portal; HubSpot calls the webhook
        cid = portal.add(
            "contacts",
            {
                "email": "cto@acme.example",
                "firstname": "Cleo",
                "lastname": "Tan",
                "company": "Acme",
                "hubspot_owner_id": OWNER,
            },
        )
        deal = portal.add(
            "deals",
            {"dealname": "Acme platform", "dealstage": "appointmentscheduled", "amount": "20000"},
        )
        portal.associate("deals", deal, "contacts", cid)
        hook = f"{worker.url}/webhooks/hubspot"
        notes = [
            portal.notification("contact.creation", cid),
            portal.notification("deal.creation", deal),
        ]
        code, answer = await portal.webhook(hook, notes)
        assert code == 200 and json.loads(answer)["accepted"] == 2, answer
        assert (await portal.webhook(hook, notes))[0] == 200  # HubSpot's retry: harmless
        lead = f"hubspot-{cid}"
        await until(
            lambda: rows(
                worker.db, f"SELECT * FROM leads WHERE lead_id='{lead}' AND owner_rep_id='rep-1'"
            ),
            what="the portal contact became a lead owned by rep-1",
        )

        # the initial load brought the earlier contact in, and texted no one about it
        await until(
            lambda: rows(worker.db, f"SELECT * FROM leads WHERE lead_id='hubspot-{early}'"),
            timeout=45,
            what="the initial load",
        )

        # 2. web activity makes it hot: the owner gets a text
        assert worker.post_events(web_burst("cto@acme.example"))[0] == 200
        await until(
            lambda: any("Acme is hot" in m["Body"] for m in twilio_fake.messages),
            timeout=45,
            what="the hot-lead text",
        )
        assert [m["To"] for m in twilio_fake.messages] == [
            REP_PHONE
        ]  # one text: none about Early Co

        # 3. HubSpot goes down; the rep logs a call ("1") and answers the post-meeting questions
        portal.outage = 503
        sms_url = f"{worker.url}/webhooks/twilio/sms"

        async def reply(text: str, texts_before: int) -> None:
            await until(
                lambda: len(twilio_fake.messages) > texts_before, what=f"a text before {text!r}"
            )
            code, _ = await twilio_fake.callback(
                sms_url, twilio_fake.inbound_params(REP_PHONE, text)
            )
            assert code == 200

        await reply("1", 0)
        await until(lambda: len(twilio_fake.messages) >= 2, what="the call-logged acknowledgement")
        assert (
            worker.post_events(
                [
                    {
                        "event_id": "m1",
                        "type": "meeting.ended",
                        "occurred_at": at(60),
                        "source": "calendar",
                        "lead_id": lead,
                        "rep_id": "rep-1",
                        "duration_s": 1800,
                    }
                ]
            )[0]
            == 200
        )
        await reply("Good", 2)
        await reply("1", 3)
        await reply("next tuesday", 4)
        await until(
            lambda: (
                len(
                    rows(
                        worker.db,
                        "SELECT * FROM crm_writes WHERE state='pending' AND last_error LIKE '%503%'",
                    )
                )
                >= 1
            ),
            timeout=45,
            what="writes held back by the outage",
        )
        await until(
            lambda: len(rows(worker.db, "SELECT * FROM crm_writes WHERE state='pending'")) >= 5,
            timeout=45,
            what="three answers, the call and the meeting recorded for HubSpot",
        )

        # 4. HubSpot comes back slowly; the worker is killed while the call is being created
        portal.create_latency = 3.0
        portal.outage = None
        await until(
            lambda: portal.engagements("calls", cid), timeout=60, what="the call reached HubSpot"
        )
        worker.kill()
        portal.create_latency = 0.0
        worker = start_worker(**env)

        # 5. after the lease, everything is written, once
        def all_done() -> bool:
            states = [
                r["state"]
                for r in rows(worker.db, "SELECT state FROM crm_writes WHERE system='hubspot'")
            ]
            return bool(states) and all(s in ("done", "ignored") for s in states)

        await until(all_done, timeout=90, what="every write done")
        calls = portal.engagements("calls", cid)
        assert len(calls) == 1, calls
        assert ("calls", calls[0]["id"], "deals", deal) in portal.associations
        assert calls[0]["properties"][MARKER].startswith("activity:call-")
        notes_ = portal.engagements("notes", cid)
        assert len(notes_) == 1 and "30 min" in notes_[0]["properties"]["hs_note_body"]
        props = portal.objects["deals"][deal]["properties"]
        assert props["hs_next_step"] == "proposal"
        assert props["nudge_meeting_rating"] == "4"
        assert props["closedate"]
        done = rows(worker.db, "SELECT * FROM crm_writes WHERE state='done'")
        assert len(done) == 5, [dict(r) for r in done]
        (call_row,) = [r for r in done if r["kind"] == "call"]
        assert (
            call_row["attempts"] >= 2 and call_row["remote_id"] == calls[0]["id"]
        )  # found, not re-created
