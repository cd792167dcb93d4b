"""A model promoted on one host reaches a worker's registry on another through the record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm.store import Store
from scoring.registry import Registry
from streams import model_sync

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").database())
    return tmp_path / "nudge.db"


async def test_promote_and_rollback_on_one_host_reach_another(
    location: Path | str, tmp_path: Path
) -> None:
    """Host A trains two churn models and promotes them in turn; host B (its own data dir)
    takes each promotion, byte for byte, and the rollback to none; the conversion target,
    never promoted, is left alone."""
    a, b = Registry(tmp_path / "a", "churn"), Registry(tmp_path / "b", "churn")
    store = await Store.open(location)
    try:
        first = a.save(b'{"trees": 1}', {"features": ["x"], "positives": 60}, NOW)
        a.promote(first.version, NOW)
        await model_sync.publish(store, a, NOW)
        assert await model_sync.sync(store, tmp_path / "b", NOW) == ["churn"]
        assert b.promoted_version() == first.version
        assert b.load_booster_json(first.version) == b'{"trees": 1}'
        assert b.get(first.version).meta["positives"] == 60
        assert await model_sync.sync(store, tmp_path / "b", NOW) == []  # nothing new

        second = a.save(b'{"trees": 2}', {"features": ["x"], "positives": 70}, NOW)
        a.promote(second.version, NOW)
        await model_sync.publish(store, a, NOW)
        await model_sync.sync(store, tmp_path / "b", NOW)
        assert b.promoted_version() == second.version

        a.rollback(NOW)
        a.rollback(NOW)  # back past the first: no model
        await model_sync.publish(store, a, NOW)
        assert await model_sync.sync(store, tmp_path / "b", NOW) == ["churn"]
        assert b.promoted_version() is None and b.history() == []
        assert Registry(tmp_path / "b").promoted_version() is None
        assert not (tmp_path / "b" / "models" / "PROMOTED").exists()
    finally:
        await store.close()


async def test_a_promotion_whose_model_is_not_published_waits(
    location: Path | str, tmp_path: Path
) -> None:
    store = await Store.open(location)
    try:
        await store.set_promotion("conversion", "m-elsewhere", NOW)
        assert await model_sync.sync(store, tmp_path / "b", NOW) == []
        assert Registry(tmp_path / "b").promoted_version() is None
    finally:
        await store.close()
