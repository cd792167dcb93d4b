"""The once-a-second flush writes in chunks, so the agents run between them: every lead
copy and snapshot still reaches the store, and what a failed chunk held is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nudge.errors import StoreUnavailable
from streams import agents
from streams.pipeline import FLUSH_CHUNK, ROWS_CHUNK
from tests.harness import AgentHarness, page_view

LEADS, VIEWS = FLUSH_CHUNK * 2 + 50, 3


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[AgentHarness]:
    harness = AgentHarness(tmp_path, partitions=4)
    events = [page_view(f"L{i}", n) for n in range(VIEWS) for i in range(LEADS)]
    await harness.intake([harness.record("web.events", e) for e in events])
    envelopes = harness.topics["lead.activity"].sent
    batch = [harness.message("lead.activity", s.value, key=s.key) for s in envelopes]
    await harness.run("lead", agents.lead, batch)
    assert len(harness.p.dirty_leads) == LEADS and len(harness.p.snapshots) > ROWS_CHUNK
    yield harness
    await harness.close()


async def test_a_flush_of_many_chunks_writes_every_lead_and_snapshot(h: AgentHarness) -> None:
    snapshots = len(h.p.snapshots)
    assert await h.p.flush_leads() == LEADS
    store = await h.p.store()
    assert len(await store.lead_states([f"L{i}" for i in range(LEADS)])) == LEADS
    assert len(await store.snapshots()) == snapshots == LEADS * VIEWS
    assert not h.p.dirty_leads and not h.p.snapshots


async def test_a_chunk_that_fails_is_kept_for_the_next_flush(
    h: AgentHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await h.p._flush_store()
    save, calls = store.save_snapshots, []

    async def down_once(rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise StoreUnavailable("database is locked")
        await save(rows)

    monkeypatch.setattr(store, "save_snapshots", down_once)
    with pytest.raises(StoreUnavailable):
        await h.p.flush_leads()
    assert not h.p.dirty_leads  # the lead copies were all written before
    assert len(h.p.snapshots) == LEADS * VIEWS - ROWS_CHUNK
    assert await h.p.flush_leads() == 0
    assert len(await (await h.p.store()).snapshots()) == LEADS * VIEWS
