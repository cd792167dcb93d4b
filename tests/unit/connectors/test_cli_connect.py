"""`nudge connect check hubspot` and `nudge connect status` through the real CLI and the HubSpot fake."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import main
from crm.connector_state import ConnectorState
from crm.store import Store
from tests.fakes.hubspot_server import FakeHubSpot
from tests.fakes.threaded import served


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHubSpot]:
    with served(FakeHubSpot()) as fake:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.access_token)
        monkeypatch.setenv("NUDGE_HUBSPOT_API_URL", fake.url)
        monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
        yield fake


def test_check_passes_on_the_bundled_map(
    portal: FakeHubSpot, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled field map fits a portal with HubSpot's default properties plus Nudge's own."""
    assert main(["connect", "check", "hubspot"]) == 0
    assert "fields map onto HubSpot fields of the right type" in capsys.readouterr().out


def test_check_names_file_and_line_of_each_mismatch(
    portal: FakeHubSpot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing property and a wrong type are each reported as file:line; a missing marker too; exit 1."""
    path = tmp_path / "map.yaml"
    path.write_text(
        "fields:\n"
        "  lead.company: {property: company, type: string}\n"
        "  lead.custom.budget: {property: budget_range, type: string}\n"
        "  lead.deal_value: {object: deal, property: amount, type: string}\n"
    )
    del portal.properties["notes"]["nudge_update_id"]
    assert main(["connect", "check", "hubspot", "--map", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:3: lead.custom.budget: HubSpot has no contacts field 'budget_range'"
    assert (
        out[1]
        == f"{path}:4: lead.deal_value: 'amount' is of type 'number' in HubSpot; the map says 'string'"
    )
    assert out[2].startswith("HubSpot notes have no 'nudge_update_id' property")


def test_check_without_token_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without HUBSPOT_ACCESS_TOKEN the check says which variable to set."""
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    assert main(["connect", "check", "hubspot"]) == 2
    assert "HUBSPOT_ACCESS_TOKEN" in capsys.readouterr().err


def test_status_lists_each_update_and_its_state(
    portal: FakeHubSpot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recorded writes are listed with their state; --state filters."""

    async def seed() -> None:
        store = await Store.open(tmp_path / "nudge.db")
        state = ConnectorState(store)
        now = dt.datetime(2026, 3, 2, 17, tzinfo=dt.UTC)
        await state.record_write(
            "hubspot", "answer:s1:q1:deal.next_step", "hubspot-7", "field", {}, now
        )
        await state.record_write("hubspot", "activity:call-1", "hubspot-7", "call", {}, now)
        await state.finish_write("hubspot", "activity:call-1", "done", now, remote_id="4242")
        await store.close()

    asyncio.run(seed())
    assert main(["connect", "status"]) == 0
    out = capsys.readouterr().out
    assert "pending" in out and "answer:s1:q1:deal.next_step" in out and "4242" in out
    assert main(["connect", "status", "--state", "done"]) == 0
    out = capsys.readouterr().out
    assert "activity:call-1" in out and "answer:" not in out
