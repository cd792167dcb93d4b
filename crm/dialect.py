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
- ``PRAGMA`` statements are SQLite settings and are dropped;
- ``INSERT OR REPLACE INTO t (a, b) …`` (or ``REPLACE INTO``) becomes ``INSERT INTO t (a, b)
  … ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET a = excluded.a, b = excluded.b``: the
  row with that primary key ends up holding the new values. Unlike SQLite, which deletes
  the old row and inserts a new one, the row keeps its place (``seq``/``rowid``) and any
  column not named keeps its value; so name every column, and the table needs a primary
  key (a conflict on another unique key is an error here, not a replacement);
- ``LIKE`` becomes ``ILIKE``: SQLite's ``LIKE`` ignores case (ASCII letters; PostgreSQL's
  ``ILIKE`` all letters), PostgreSQL's does not. A pattern that is a ``?`` or a literal
  gets ``ESCAPE ''`` unless it names its own ``ESCAPE``: SQLite has no escape character
  by default, PostgreSQL's is the backslash;
- ``CAST(json_extract(col, '$.a.b') AS TEXT|INTEGER|REAL)`` becomes ``CAST(col::jsonb #>>
  '{a,b}' AS …)``: the same string or number (``json_extract`` alone returns a number in
  SQLite and text in PostgreSQL, so it is refused without the ``CAST``; JSON ``true``
  reads ``1`` in SQLite and ``true`` here);
- ``datetime('now')``, ``date('now')`` and ``strftime('<%Y %m %d %H %M %S %f and
  text>', 'now')`` become ``to_char`` of the statement's time in UTC, the same text.

DDL (:func:`ddl_to_postgres`): ``REAL`` → ``DOUBLE PRECISION``, ``INTEGER`` → ``BIGINT``
(SQLite integers are 64-bit), ``INTEGER PRIMARY KEY AUTOINCREMENT`` → ``BIGSERIAL
PRIMARY KEY``, and a ``seq BIGSERIAL`` column at the end of every created table. Anything else
(``TEXT`` timestamps in ISO 8601, ``CHECK``, partial indexes, ``ON CONFLICT … DO UPDATE
SET x = excluded.x``) already means the same in both.

Any other SQLite-only function (other JSON and date functions, a date with modifiers such
as ``datetime('now', '-1 day')``, ``julianday``, ``ifnull``, ``group_concat``, ``instr``,
``GLOB``, …) raises :class:`DialectError` naming it: compute the value in Python and pass
it as a parameter, as ``crm/`` does. ``tests/unit/test_store_contract.py`` runs the store's
tests on both databases, ``tests/unit/test_dialect_contract.py`` each construct above, and
``tests/unit/test_dialect.py`` translates every SQL string in ``crm/``.
"""

from __future__ import annotations

import functools
import re
from typing import Any


class DialectError(ValueError):
    """A SQLite construct the PostgreSQL store cannot run with the same meaning."""


_OR_REPLACE = re.compile(
    r"^\s*(?:INSERT\s+OR\s+)?REPLACE\s+INTO\s+(\w+)\s*(\(([^)]*)\))?", re.IGNORECASE
)
_LIKE = re.compile(
    r"\bLIKE(\s+(?:\?|'(?:[^']|'')*')(?=\s*(?:$|[),;]|(?:AND|OR|ESCAPE|ORDER|GROUP|LIMIT"
    r"|HAVING|UNION|WHEN|THEN|ELSE|END)\b)))?(\s+ESCAPE\b)?",
    re.IGNORECASE,
)
_ESCAPE = re.compile(r"\bESCAPE\b", re.IGNORECASE)
_JSON_EXTRACT = re.compile(
    r"\bCAST\s*\(\s*json_extract\s*\(\s*([\w.]+)\s*,\s*'\$((?:\.\w+)+)'\s*\)"
    r"\s+AS\s+(TEXT|INTEGER|REAL)\s*\)",
    re.IGNORECASE,
)
_JSON_TYPES = {"TEXT": "TEXT", "INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION"}
_NOW = re.compile(
    r"\b(datetime|date|strftime)\s*\(\s*(?:'([^']*)'\s*,\s*)?'now'\s*\)", re.IGNORECASE
)
_STRFTIME = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH24", "%M": "MI", "%S": "SS"}
_STRFTIME["%f"] = "SS.MS"
_SQLITE_ONLY = re.compile(
    r"\b(json\w*|julianday|unixepoch|datetime|date|time|strftime|timediff|ifnull|iif|instr"
    r"|group_concat|printf|format|last_insert_rowid|changes|total_changes|typeof|zeroblob"
    r"|randomblob|likelihood|unlikely|glob)\s*\(|\bGLOB\b|\bREGEXP\b|\bMATCH\b",
    re.IGNORECASE,
)
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


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str, *, lock_rows: bool = False) -> str:
    """One SQLite statement as PostgreSQL runs it (see the module docstring); the store's
    statements are a fixed set, so each is translated once per process.

    ``lock_rows``: the statement runs inside a ``BEGIN IMMEDIATE`` transaction, so a
    ``SELECT`` claims the rows it reads (``FOR UPDATE SKIP LOCKED``).
    """
    out = _placeholders(_functions(_like(_or_replace(sql))))
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


def _masked(sql: str) -> str:
    """``sql`` with the inside of every quoted string blanked, for searching its code."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            out.append(ch if ch == quote else " ")
            if ch == quote:
                quote = None
        else:
            if ch in ("'", '"'):
                quote = ch
            out.append(ch)
    return "".join(out)


def _sub_outside_literals(pattern: re.Pattern[str], repl: Any, sql: str) -> str:
    """``pattern.sub(repl, sql)`` for matches that start outside quoted strings."""
    if not pattern.search(sql):
        return sql
    masked = _masked(sql)
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(sql):
        if masked[match.start()] != sql[match.start()] or match.start() < last:
            continue
        pieces.append(sql[last : match.start()])
        pieces.append(repl(match))
        last = match.end()
    pieces.append(sql[last:])
    return "".join(pieces)


def _or_replace(sql: str) -> str:
    match = _OR_REPLACE.match(sql)
    if not match:
        return sql
    table, columns = match.group(1), match.group(3)
    if not columns:
        raise DialectError(f"INSERT OR REPLACE INTO {table} needs its column list: {sql.strip()}")
    names = [c.strip() for c in columns.split(",")]
    body = f"INSERT INTO {table} ({', '.join(names)}){sql[match.end() :]}".rstrip().rstrip(";")
    update = ", ".join(f"{c} = excluded.{c}" for c in names)
    clause = f" ON CONFLICT ON CONSTRAINT {table}_pkey DO UPDATE SET {update} "
    returning = _RETURNING.search(_masked(body))
    if returning:
        return f"{body[: returning.start()].rstrip()}{clause}{body[returning.start() :]}"
    return body + clause.rstrip()


def _like(sql: str) -> str:
    def repl(match: re.Match[str]) -> str:
        pattern, escape = match.group(1), match.group(2)
        if escape:
            return f"ILIKE{pattern or ''}{escape}"
        if pattern is None:
            if _ESCAPE.search(_masked(sql[match.end() :])):
                return "ILIKE"
            raise DialectError(
                f"LIKE with a pattern that is not a ? or a literal needs an ESCAPE clause "
                f"(SQLite has no escape character, PostgreSQL the backslash): {sql.strip()}"
            )
        return f"ILIKE{pattern} ESCAPE ''"

    return _sub_outside_literals(_LIKE, repl, sql)


def _functions(sql: str) -> str:
    def json_repl(match: re.Match[str]) -> str:
        column, path, kind = match.groups()
        keys = ",".join(path.strip(".").split("."))
        return f"CAST(({column})::jsonb #>> '{{{keys}}}' AS {_JSON_TYPES[kind.upper()]})"

    def now_repl(match: re.Match[str]) -> str:
        name, fmt = match.group(1).lower(), match.group(2)
        if name == "datetime" and fmt is None:
            pattern = "YYYY-MM-DD HH24:MI:SS"
        elif name == "date" and fmt is None:
            pattern = "YYYY-MM-DD"
        elif name == "strftime" and fmt is not None:
            pattern = _to_char_format(fmt, sql)
        else:
            raise DialectError(f"{match.group(0)} has no PostgreSQL equivalent here: {sql.strip()}")
        return f"to_char(statement_timestamp() AT TIME ZONE 'UTC', '{pattern}')"

    out = _sub_outside_literals(_JSON_EXTRACT, json_repl, sql)
    out = _sub_outside_literals(_NOW, now_repl, out)
    left = _SQLITE_ONLY.search(out) and _SQLITE_ONLY.search(_masked(out))
    if left:
        raise DialectError(
            f"{left.group(0).rstrip('(').strip()} is SQLite-only: compute the value in Python "
            f"and pass it as a parameter: {sql.strip()}"
        )
    return out


def _to_char_format(fmt: str, sql: str) -> str:
    """A SQLite ``strftime`` format as a ``to_char`` one: codes mapped, text quoted."""
    out: list[str] = []
    text: list[str] = []
    for piece in re.split(r"(%.)", fmt):
        if piece.startswith("%") and len(piece) == 2:
            if piece not in _STRFTIME:
                raise DialectError(f"strftime code {piece} is not translated: {sql.strip()}")
            if text:
                out.append('"' + "".join(text) + '"')
                text.clear()
            out.append(_STRFTIME[piece])
        elif piece:
            text.append(piece)
    if text:
        out.append('"' + "".join(text) + '"')
    return "".join(out)


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
