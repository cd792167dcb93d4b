"""The CRM store against a real SQLite file: migrations, identities, the outbox."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from crm import sqlite
from crm.store import Store, normalise_identity
from nudge.errors import StoreUnavailable
from nudge.signals import NudgeCommand

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def command(nudge_id: str = "n_1") -> NudgeCommand:
    return NudgeCommand(
        nudge_id=nudge_id,
        rep_id="r",
        lead_id="L",
        text="hi",
        playbook="p",
        rule="r",
        trigger_event_id="e",
        created_at=NOW,
    )


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    """Opening the same file twice applies each migration once."""
    store = await Store.open(tmp_path / "db.sqlite")
    version = await store.migrate()
    await store.close()
    store = await Store.open(tmp_path / "db.sqlite")
    assert await store.migrate() == version >= 1
    await store.close()


async def test_identity_resolution_is_normalised(tmp_path: Path) -> None:
    """Emails match case-insensitively and phones by digits."""
    store = await Store.open(tmp_path / "db.sqlite")
    email = ("email", normalise_identity("email", "Jane@Acme.com"))
    phone = ("phone", normalise_identity("phone", "+1 (415) 555-0101"))
    await store.link_identities({email: "L1", phone: "L1"})
    asked = [("email", "jane@acme.com"), ("phone", "+14155550101"), ("visitor", "v-9")]
    assert await store.resolve_many(asked) == {asked[0]: "L1", asked[1]: "L1"}
    await store.close()


async def test_unmatched_activity_is_kept_and_claimed_later(tmp_path: Path) -> None:
    """An event whose lead is unknown yet is kept and handed over when the lead appears."""
    store = await Store.open(tmp_path / "db.sqlite")
    detail = {"event_id": "e1", "email": "JANE@acme.com", "type": "page.viewed"}
    await store.log_activity("e1", None, "page.viewed", NOW, detail=detail)
    jane = ("email", "jane@acme.com")
    assert await store.waiting([jane]) == {jane: [("e1", detail)]}
    await store.mark_claimed([("L1", "e1")])
    assert await store.waiting([jane]) == {}
    await store.close()


async def test_activity_recorded_unmatched_after_its_identity_was_linked_is_claimed(
    tmp_path: Path,
) -> None:
    """Two workers: X resolves (miss), Y links and claims (nothing yet), X records unmatched.

    Found end to end (tests/integration/test_survive.py): lead-13-p1 stayed unmatched for
    good. X's re-check right after its insert must hand the event over.
    """
    x = await Store.open(tmp_path / "db.sqlite")
    y = await Store.open(tmp_path / "db.sqlite")
    jane = ("email", "jane@acme.com")
    detail = {"event_id": "e1", "email": "jane@acme.com", "type": "page.viewed"}
    assert await x.resolve_many([jane]) == {}  # X: not linked yet
    await y.link_identities({jane: "L1"})  # Y: link
    assert await y.waiting([jane]) == {}  # Y: nothing waits yet
    await x.log_unmatched([("e1", "page.viewed", NOW, detail)])  # X: unmatched
    assert await x.resolve_many([jane]) == {jane: "L1"}  # X's re-check (streams.ingest)
    assert await x.waiting([jane]) == {jane: [("e1", detail)]}
    await x.mark_claimed([("L1", "e1")])  # once forwarded
    assert await y.waiting([jane]) == {}
    await x.close()
    await y.close()


async def test_a_batch_links_finds_and_then_claims_what_waited(tmp_path: Path) -> None:
    """waiting finds unmatched activities without taking them: until mark_claimed (after
    they are forwarded) a second look finds them again, afterwards nothing does."""
    store = await Store.open(tmp_path / "db.sqlite")
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    e1 = {"event_id": "e1", "email": "Jane@Acme.com", "type": "page.viewed"}
    e2 = {"event_id": "e2", "phone": "+1 415 555 0101", "type": "call.ended"}
    await store.log_unmatched([("e1", "page.viewed", at, e1), ("e2", "call.ended", NOW, e2)])
    links = {("email", "jane@acme.com"): "L1", ("phone", "+14155550101"): "L2"}
    await store.link_identities(links)
    found = await store.waiting(links)
    assert found == {
        ("email", "jane@acme.com"): [("e1", e1)],
        ("phone", "+14155550101"): [("e2", e2)],
    }
    assert await store.resolve_many(sorted(links)) == links
    assert await store.waiting(links) == found  # not claimed yet: found again
    await store.mark_claimed([("L1", "e1"), ("L2", "e2")])
    assert await store.waiting(links) == {}
    await store.close()


async def test_another_process_holding_the_write_lock_is_store_unavailable(
    tmp_path: Path,
) -> None:
    """Past the busy timeout, SQLite's 'database is locked' (another worker process holds
    the file's write lock) is StoreUnavailable — the agents redo the work, they do not
    dead-letter it — and the connection is free again once the lock goes."""
    path = tmp_path / "crm.db"
    await (await Store.open(path)).close()  # a migrated file, in WAL mode
    other = sqlite3.connect(path, isolation_level=None)
    db = await sqlite.connect(path, timeout=0.1)
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="database is locked") as raised:
            await db.execute("INSERT INTO t VALUES (1)")
        assert isinstance(raised.value, sqlite3.OperationalError)
        other.execute("ROLLBACK")
        await db.execute("INSERT INTO t VALUES (2)")
        await db.commit()
        assert [tuple(r) for r in await db.execute_fetchall("SELECT x FROM t")] == [(2,)]
    finally:
        other.close()
        await db.close()
