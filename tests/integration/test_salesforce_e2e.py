"""Salesforce end to end: a real worker, the real broker, simple-salesforce over HTTPS against FakeSalesforce.

The first sync loads the org's existing Lead (as it is, texting no one); a Lead added after
connecting is read by the incremental sync, becomes a lead, turns hot on web activity and
texts its owner; the rep's "1" logs a call, which reaches the
org as exactly one Task although Salesforce is down when it is logged and the worker is
SIGKILLed before it is written; the sync's checkpoint survives the restart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from connectors import salesforce
from tests.fakes.salesforce_server import FakeSalesforce
from tests.fakes.threaded import served
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_conversation import REP_PHONE, rep, rows, twilio_env, until
from tests.integration.test_hubspot_e2e import field_map, web_burst

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OWNER = "005000000000001AAA"


async def test_lead_to_nudge_and_logged_call_to_one_task(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Org lead → synced → hot → text; the rep's logged call is one Task, through an outage and a SIGKILL."""
    fmap = field_map(tmp_path, "salesforce", OWNER)
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "hot-lead.yaml").write_text((ROOT / "playbooks/default/hot-lead.yaml").read_text())
    with served(FakeSalesforce(tmp_path / "tls")) as org:
        env = dict(
            NUDGE_PLAYBOOKS=str(playbooks),
            **twilio_env(twilio_fake),
            SALESFORCE_INSTANCE_URL=org.url,
            SALESFORCE_ACCESS_TOKEN=org.token,
            NUDGE_SALESFORCE_FIELD_MAP=str(fmap),
            NUDGE_SALESFORCE_SYNC_INTERVAL="5",
            REQUESTS_CA_BUNDLE=str(org.ca_file),
        )
        before = org.add(
            "Lead",
            {"Email": "old@acme.example", "Company": "Old Co", "OwnerId": OWNER},
            at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
        )
        worker = start_worker(**env)
        assert worker.post_events([rep()])[0] == 200
        await until(
            lambda: rows(worker.db, "SELECT * FROM sync_checkpoints WHERE system='salesforce'"),
            timeout=30,
            what="the first sync set its checkpoints",
        )
        rid = org.add(
            "Lead",
            {
                "Email": "cto@acme.example",
                "Company": "Acme",
                "FirstName": "Cleo",
                "LastName": "Tan",
                "OwnerId": OWNER,
            },
        )
        lead = salesforce.lead_id(rid)
        await until(
            lambda: rows(
                worker.db, f"SELECT * FROM leads WHERE lead_id='{lead}' AND owner_rep_id='rep-1'"
            ),
            timeout=45,
            what="the org's lead synced",
        )
        # the lead that existed before connecting came in with the initial load
        assert rows(worker.db, f"SELECT * FROM leads WHERE lead_id='{salesforce.lead_id(before)}'")

        assert worker.post_events(web_burst("cto@acme.example"))[0] == 200
        await until(
            lambda: any("Acme is hot" in m["Body"] for m in twilio_fake.messages),
            timeout=45,
            what="the hot-lead text",
        )

        org.outage = 503
        code, _ = await twilio_fake.callback(
            f"{worker.url}/webhooks/twilio/sms", twilio_fake.inbound_params(REP_PHONE, "1")
        )
        assert code == 200
        await until(
            lambda: rows(
                worker.db,
                "SELECT * FROM crm_writes WHERE system='salesforce' AND kind='call' "
                "AND last_error IS NOT NULL",
            ),
            timeout=45,
            what="the call held back by the outage",
        )
        worker.kill()
        org.outage = None
        worker = start_worker(**env)
        await until(lambda: org.objects["Task"], timeout=120, what="the call reached Salesforce")
        await until(
            lambda: rows(
                worker.db,
                "SELECT * FROM crm_writes WHERE system='salesforce' AND kind='call' "
                "AND state='done'",
            ),
            timeout=60,
            what="the call write done",
        )
        (task,) = org.objects["Task"].values()
        assert task["WhoId"] == rid and task["TaskSubtype"] == "Call"
        assert task["Nudge_Update_Id__c"].startswith("activity:call-")
        # nobody was ever texted about the initially loaded lead
        assert not any("Old Co" in m["Body"] for m in twilio_fake.messages)
