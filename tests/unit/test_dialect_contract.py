"""Each SQLite construct that crm/dialect.py translates means the same on both stores.

Every test runs the same statement, written in SQLite's dialect, on SQLite and on
PostgreSQL (``STORES``), through the store's own connection, and checks one result.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from crm.store import Store
from tests.conftest import STORES

pytestmark = STORES


async def rows(store: Store, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await store.db.execute_fetchall(sql, params)]


async def add_lead(store: Store, lead_id: str, company: str, profile: dict[str, Any]) -> None:
    await store.db.execute(
        "INSERT INTO leads (lead_id, company, profile_json, updated_at) VALUES (?, ?, ?, ?)",
        (lead_id, company, json.dumps(profile), "2026-03-02T12:00:00Z"),
    )
    await store.db.commit()


async def test_insert_or_replace_leaves_the_new_values(store: Store) -> None:
    """``INSERT OR REPLACE`` on an existing primary key: one row, holding the new values."""
    sql = "INSERT OR REPLACE INTO reps (rep_id, name, phone, updated_at) VALUES (?, ?, ?, ?)"
    await store.db.execute(sql, ("rep-9", "Ann", "+14155550109", "2026-03-01T00:00:00Z"))
    await store.db.execute(sql, ("rep-9", "Ann B.", None, "2026-03-02T00:00:00Z"))
    await store.db.execute("REPLACE INTO reps (rep_id, name, updated_at) VALUES (?, ?, ?)",
                           ("rep-8", "Bo", "2026-03-02T00:00:00Z"))  # fmt: skip
    await store.db.commit()
    assert await rows(
        store, "SELECT rep_id, name, phone, updated_at FROM reps ORDER BY rep_id"
    ) == [
        ("rep-8", "Bo", None, "2026-03-02T00:00:00Z"),
        ("rep-9", "Ann B.", None, "2026-03-02T00:00:00Z"),
    ]


async def test_like_ignores_case_and_has_no_escape_character(store: Store) -> None:
    """``LIKE`` matches regardless of case (a parameter and a literal pattern), ``NOT
    LIKE`` too, and a backslash in a pattern is an ordinary character."""
    await add_lead(store, "L1", "Acme Corp", {})
    await add_lead(store, "L2", "ACME labs", {})
    await add_lead(store, "L3", "Globex", {})
    await add_lead(store, "L4", "back\\slash", {})
    ids = "SELECT lead_id FROM leads WHERE company {} ORDER BY lead_id"
    assert await rows(store, ids.format("LIKE ?"), ("acme%",)) == [("L1",), ("L2",)]
    assert await rows(store, ids.format("LIKE '%CORP'")) == [("L1",)]
    assert await rows(store, ids.format("NOT LIKE 'acme%'")) == [("L3",), ("L4",)]
    assert await rows(store, ids.format("LIKE ?"), ("BACK\\SLASH",)) == [("L4",)]
    assert await rows(store, ids.format("LIKE ?"), ("back\\s%",)) == [("L4",)]
    assert await rows(store, ids.format("LIKE ? ESCAPE '!'"), ("acme!%",)) == []


async def test_json_extract_with_a_cast(store: Store) -> None:
    """``CAST(json_extract(col, '$.a.b') AS …)``: the same string, integer or real; a path
    that is not there is NULL."""
    await add_lead(store, "L1", "Acme", {"crm": {"tier": "gold", "seats": 12, "arr": 1500.5}})
    got = await rows(
        store,
        """SELECT CAST(json_extract(profile_json, '$.crm.tier') AS TEXT),
                  CAST(json_extract(profile_json, '$.crm.seats') AS INTEGER),
                  CAST(json_extract(profile_json, '$.crm.arr') AS REAL),
                  CAST(json_extract(profile_json, '$.crm.missing') AS TEXT)
           FROM leads""",
    )
    assert got == [("gold", 12, 1500.5, None)]
    assert await rows(
        store,
        "SELECT lead_id FROM leads WHERE CAST(json_extract(profile_json, '$.crm.seats') "
        "AS INTEGER) > ?",
        (10,),
    ) == [("L1",)]


async def test_now_in_utc_as_sqlite_writes_it(store: Store) -> None:
    """``datetime('now')``, ``date('now')`` and ``strftime(…, 'now')``: UTC, the same text
    shape on both (ISO 8601 as the store writes timestamps)."""
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ((stamp, day, iso),) = await rows(
        store, "SELECT datetime('now'), date('now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    )
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp), stamp
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", day), day
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso), iso
    at = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC)
    assert before - dt.timedelta(seconds=1) <= at <= after
    assert day == at.date().isoformat() or day == after.date().isoformat()
    assert abs(dt.datetime.fromisoformat(iso) - at) < dt.timedelta(seconds=2)
