"""The SQL Nudge writes for SQLite, as PostgreSQL reads it.

Every query in ``crm/`` (and the migrations) is written once, in the SQLite dialect;
:func:`to_postgres` rewrites the few constructs that differ, so the PostgreSQL store
(:mod:`crm.pg`) runs the same statements and the two stores cannot drift apart. What
it rewrites, and why each is safe:

- ``?`` placeholders become ``%s`` (and a literal ``%`` becomes ``%%``), psycopg's style;
- ``INSERT OR IGNORE INTO …`` becomes ``INSERT INTO … ON CONFLICT DO NOTHING`` — the
  same "keep the existing row" on any unique or primary key;
- ``rowid`` (SQLite's implicit insertion order, used to keep each rep's nudges in the
  order they arrived) becomes ``seq``, a ``BIGSERIAL`` column every PostgreSQL table
  gets (:func:`ddl_to_postgres`);
- ``BEGIN IMMEDIATE`` (SQLite: take the write lock now, because what is read next is
  about to be claimed) becomes ``BEGIN``, and each ``SELECT`` inside that transaction
  gets ``FOR UPDATE SKIP LOCKED``: rows another worker is claiming right now are
  skipped instead of read twice (the scheduler's lease, :meth:`crm.schedules.Schedules.due`);
- ``PRAGMA`` statements are SQLite settings and are dropped.

DDL (:func:`ddl_to_postgres`): ``REAL`` → ``DOUBLE PRECISION``, ``INTEGER`` → ``BIGINT``
(SQLite integers are 64-bit), ``INTEGER PRIMARY KEY AUTOINCREMENT`` → ``BIGSERIAL
PRIMARY KEY``, and a ``seq BIGSERIAL`` column at the end of every created table. Anything else
(``TEXT`` timestamps in ISO 8601, ``CHECK``, partial indexes, ``ON CONFLICT … DO UPDATE
SET x = excluded.x``) already means the same in both.

Not handled, and so not to be used in ``crm/``: ``INSERT OR REPLACE``, SQLite's date and
JSON functions, ``LIKE`` relying on SQLite's case-insensitivity. ``tests/unit/
test_store_contract.py`` runs the store's tests on both databases.
"""

from __future__ import annotations

import re

_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_AUTOINC = re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.IGNORECASE)
_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)
_REAL = re.compile(r"\bREAL\b", re.IGNORECASE)
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.IGNORECASE | re.DOTALL
)


def strip_comments(sql: str) -> str:
    """``sql`` without its ``--`` comments (outside quoted strings)."""
    return _placeholders(sql).replace("%%", "%").replace("%s", "?") if "--" in sql else sql


def is_begin_immediate(sql: str) -> bool:
    return re.fullmatch(r"\s*BEGIN\s+IMMEDIATE\s*;?\s*", sql, re.IGNORECASE) is not None


def is_pragma(sql: str) -> bool:
    return re.match(r"\s*PRAGMA\b", sql, re.IGNORECASE) is not None


def is_select(sql: str) -> bool:
    return re.match(r"\s*(SELECT|WITH)\b", sql, re.IGNORECASE) is not None


def to_postgres(sql: str, *, lock_rows: bool = False) -> str:
    """One SQLite statement as PostgreSQL runs it (see the module docstring).

    ``lock_rows``: the statement runs inside a ``BEGIN IMMEDIATE`` transaction, so a
    ``SELECT`` claims the rows it reads (``FOR UPDATE SKIP LOCKED``).
    """
    out = _placeholders(sql)
    if _OR_IGNORE.search(out):
        out = _OR_IGNORE.sub("INSERT INTO", out)
        body = out.rstrip().rstrip(";")
        returning = _RETURNING.search(body)
        if returning:
            body = f"{body[: returning.start()]}ON CONFLICT DO NOTHING {body[returning.start() :]}"
        else:
            body += " ON CONFLICT DO NOTHING"
        out = body
    out = _ROWID.sub("seq", out)
    if lock_rows and is_select(out) and "FOR UPDATE" not in out.upper():
        out = out.rstrip().rstrip(";") + " FOR UPDATE SKIP LOCKED"
    return out


def _placeholders(sql: str) -> str:
    """``?`` → ``%s`` outside quoted strings, ``%`` → ``%%`` everywhere (psycopg reads
    placeholders inside literals too), and ``--`` comments dropped (an apostrophe in one
    would otherwise open a string)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        i += 1
        if not quote and ch == "-" and sql.startswith("-", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def ddl_to_postgres(statement: str) -> str:
    """One migration statement (SQLite DDL) as PostgreSQL DDL."""
    out = _AUTOINC.sub("BIGSERIAL PRIMARY KEY", statement)
    out = _INTEGER.sub("BIGINT", out)
    out = _REAL.sub("DOUBLE PRECISION", out)
    if _CREATE_TABLE.match(out):  # last, so positional INSERTs still fill the declared columns
        end = out.rstrip().rstrip(";").rstrip()
        if end.endswith(")"):
            out = end[:-1].rstrip() + ",\n    seq BIGSERIAL\n)"
    return out
