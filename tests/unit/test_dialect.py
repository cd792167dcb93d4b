"""The SQLite statements of crm/ as PostgreSQL runs them (crm/dialect.py)."""

from __future__ import annotations

from crm.dialect import ddl_to_postgres, strip_comments, to_postgres


def test_placeholders_and_percent_signs() -> None:
    """``?`` becomes ``%s``; a ``%`` (even inside a literal) is doubled for psycopg."""
    sql = "SELECT * FROM t WHERE a = ? AND b LIKE 'x%' AND c = '?'"
    assert to_postgres(sql) == "SELECT * FROM t WHERE a = %s AND b LIKE 'x%%' AND c = '?'"


def test_insert_or_ignore_becomes_on_conflict_do_nothing() -> None:
    """The same 'keep the row that is there', before any RETURNING."""
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING RETURNING a"
    )


def test_rowid_is_seq_and_claims_lock_rows() -> None:
    """rowid orders by insertion (``seq``); inside BEGIN IMMEDIATE a SELECT claims its rows
    and skips those another worker is claiming."""
    assert to_postgres("SELECT rowid AS seq FROM outbox ORDER BY rowid") == (
        "SELECT seq AS seq FROM outbox ORDER BY seq"
    )
    assert to_postgres("SELECT id FROM s ORDER BY due LIMIT ?", lock_rows=True) == (
        "SELECT id FROM s ORDER BY due LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    assert to_postgres("UPDATE s SET a = 1", lock_rows=True) == "UPDATE s SET a = 1"


def test_ddl() -> None:
    """Types widen to PostgreSQL's, AUTOINCREMENT becomes BIGSERIAL, every table gets a last
    ``seq`` column, and comments (an apostrophe in one) do not confuse the rewrite."""
    ddl = strip_comments(
        "-- the rep's table\nCREATE TABLE t (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    n INTEGER NOT NULL DEFAULT 0,\n    x REAL\n)"
    )
    out = ddl_to_postgres(ddl)
    assert "rep's" not in out
    assert "id BIGSERIAL PRIMARY KEY" in out and "n BIGINT NOT NULL" in out
    assert "x DOUBLE PRECISION" in out
    assert out.rstrip().endswith("seq BIGSERIAL\n)")
    assert ddl_to_postgres("CREATE INDEX i ON t (a) WHERE b IS NULL") == (
        "CREATE INDEX i ON t (a) WHERE b IS NULL"
    )
