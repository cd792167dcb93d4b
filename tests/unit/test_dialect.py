"""The SQLite statements of crm/ as PostgreSQL runs them (crm/dialect.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from crm.dialect import DialectError, ddl_to_postgres, strip_comments, to_postgres

CRM = Path(__file__).resolve().parents[2] / "crm"


def test_placeholders_and_percent_signs() -> None:
    """``?`` becomes ``%s``; a ``%`` (even inside a literal) is doubled for psycopg."""
    sql = "SELECT * FROM t WHERE a = ? AND b = 'x%' AND c = '?'"
    assert to_postgres(sql) == "SELECT * FROM t WHERE a = %s AND b = 'x%%' AND c = '?'"


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


def test_insert_or_replace_updates_every_named_column() -> None:
    """On the primary key, before any RETURNING; REPLACE INTO is the same statement."""
    assert to_postgres("INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)") == (
        "INSERT INTO t (k, v) VALUES (%s, %s) "
        "ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET k = excluded.k, v = excluded.v"
    )
    assert to_postgres("REPLACE INTO t (k) VALUES (?) RETURNING k") == (
        "INSERT INTO t (k) VALUES (%s) "
        "ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET k = excluded.k RETURNING k"
    )


def test_like_is_ilike_without_an_escape_character() -> None:
    """Case-insensitive as in SQLite; no escape character unless the statement names one;
    LIKE inside a string literal is left alone."""
    assert to_postgres("SELECT a FROM t WHERE b LIKE ? AND c NOT LIKE 'x%'") == (
        "SELECT a FROM t WHERE b ILIKE %s ESCAPE '' AND c NOT ILIKE 'x%%' ESCAPE ''"
    )
    assert to_postgres("SELECT a FROM t WHERE (b LIKE ? ESCAPE '!')") == (
        "SELECT a FROM t WHERE (b ILIKE %s ESCAPE '!')"
    )
    assert to_postgres("SELECT 'a LIKE b' FROM t") == "SELECT 'a LIKE b' FROM t"


def test_json_extract_in_a_cast_and_now() -> None:
    assert to_postgres("SELECT CAST(json_extract(p, '$.a.b') AS INTEGER) FROM t") == (
        "SELECT CAST((p)::jsonb #>> '{a,b}' AS BIGINT) FROM t"
    )
    assert to_postgres("SELECT datetime('now')") == (
        "SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
    )
    assert to_postgres("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')") == (
        "SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', "
        """'YYYY"-"MM"-"DD"T"HH24":"MI":"SS.MS"Z"')"""
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT json_extract(p, '$.a') FROM t",  # a number in SQLite, text in PostgreSQL
        "SELECT datetime('now', '-1 day')",
        "SELECT strftime('%s', 'now')",
        "SELECT julianday(a) FROM t",
        "SELECT ifnull(a, 0) FROM t",
        "SELECT group_concat(a) FROM t",
        "SELECT a FROM t WHERE a GLOB 'x*'",
        "SELECT a FROM t WHERE a LIKE ? || '%'",
        "INSERT OR REPLACE INTO t VALUES (?)",
    ],
)
def test_sqlite_only_constructs_are_refused_by_name(sql: str) -> None:
    """What cannot mean the same in PostgreSQL is an error naming it, never a silent
    difference."""
    with pytest.raises(DialectError):
        to_postgres(sql)


def sql_strings() -> list[tuple[str, str]]:
    """Every string literal in crm/ that is a SQL statement, with where it is."""
    found = []
    for path in sorted(CRM.glob("*.py")):
        if path.name in ("dialect.py", "pg.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.lstrip()
                if text.split(" ", 1)[0].upper() in (
                    "SELECT",
                    "INSERT",
                    "UPDATE",
                    "DELETE",
                    "WITH",
                ):
                    found.append((f"{path.name}:{node.lineno}", node.value))
    for path in sorted((CRM / "migrations").glob("*.sql")):
        for n, statement in enumerate(path.read_text().split(";\n")):
            if statement.strip():
                found.append((f"{path.name} statement {n + 1}", strip_comments(statement)))
    return found


def test_every_statement_in_crm_translates() -> None:
    """No statement of the store (or its migrations) uses a construct the PostgreSQL
    store refuses: found here, naming the file and line, not in production."""
    statements = sql_strings()
    assert len(statements) > 50
    refused = []
    for where, sql in statements:
        try:
            to_postgres(ddl_to_postgres(sql))
        except DialectError as exc:
            refused.append(f"{where}: {exc}")
    assert not refused, "\n".join(refused)
