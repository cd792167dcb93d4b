"""The PostgreSQL store: the same :class:`crm.store.Store`, on a pooled psycopg 3 connection.

``NUDGE_DATABASE_URL=postgresql://user@host/db`` selects it (:func:`crm.open_store`);
SQLite stays the default. Why an adapter rather than a second store: every query in
``crm/`` is written once, for SQLite, and :mod:`crm.dialect` rewrites the few
constructs PostgreSQL spells differently, so the two stores run the same statements
and the same migrations and cannot drift apart (one contract suite runs on both,
``tests/unit/test_store_contract.py``).

:class:`PgConnection` offers the part of aiosqlite's connection the store uses
(``execute``, ``execute_fetchall``, ``executemany``, ``commit``, ``rollback``, ``close``;
rows readable by name and position), with sqlite3's transaction rules: a write
(``INSERT``/``UPDATE``/``DELETE``) opens a transaction that lasts until ``commit`` or
``rollback``, on one connection taken from the pool for that long; everything else
outside a transaction runs on any pooled connection and commits at once. ``BEGIN
IMMEDIATE`` opens a transaction whose ``SELECT``\\ s claim their rows (``FOR UPDATE SKIP
LOCKED``): workers on different hosts never lease the same schedule row, and the one
that finds a row locked skips it instead of waiting. Single conditional ``UPDATE``\\ s
(the outbox claim, the reconciliation's retake) are safe as they are: PostgreSQL
re-checks the ``WHERE`` of an update that waited for another's row lock, so exactly one
of two concurrent claims changes the row.

A lost connection or transaction (a restart, a failover) raises
:class:`nudge.errors.StoreUnavailable`: nothing of that transaction was kept, and the
agents redo the same batch once the database answers instead of dead-lettering it.

Migrations run under a session advisory lock, so two workers starting at once on a
new database apply each one once.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from crm import dialect
from crm.transactions import TaskTransactions
from nudge.errors import StoreUnavailable

MIGRATION_LOCK = 0x6E75646765  # "nudge": the advisory lock id migrations take
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_DDL = re.compile(r"\s*(CREATE|ALTER|DROP)\b", re.IGNORECASE)
_END = re.compile(r"\s*(COMMIT|ROLLBACK|END)\s*;?\s*$", re.IGNORECASE)


class Row:
    """A result row readable like ``sqlite3.Row``: ``row["col"]``, ``row[0]``, ``dict(row)``,
    unpacking by position."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key.lower()]]
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    names = [c.name.lower() for c in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(index, values)


class Result:
    """What ``execute`` returns: the rows read and how many rows a write changed."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = None

    async def fetchall(self) -> list[Row]:
        return self.rows

    async def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None


class PgConnection(TaskTransactions):
    """aiosqlite's connection surface over a psycopg pool (see the module docstring)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.row_factory: Any = None  # accepted and ignored: rows are always :class:`Row`
        self._tx: Any = None
        self._lock_rows = False
        self._init_transactions()

    @property
    def in_transaction(self) -> bool:
        return self._mine()

    def _mine(self) -> bool:
        return self._tx is not None and super()._mine()

    async def _begin(self, lock_rows: bool = False) -> None:
        """Open the running task's transaction (if it has none), on a connection of its
        own; a task that writes while another's is open waits for it to end
        (:mod:`crm.transactions`)."""
        if self._mine():
            return
        await self._claim()
        try:
            self._tx = await self._getconn()
        except BaseException:
            self._release()
            raise
        self._lock_rows = lock_rows

    def _end(self) -> Any:
        """Close the running task's transaction: its connection, and the lock released."""
        tx, self._tx = self._tx, None
        self._lock_rows = False
        self._release()
        return tx

    async def _getconn(self) -> Any:
        from psycopg_pool import PoolTimeout

        try:
            return await self.pool.getconn()
        except PoolTimeout as exc:
            raise StoreUnavailable(f"PostgreSQL: no connection: {exc}") from exc

    async def _run(self, conn: Any, sql: str, params: Any, many: bool = False) -> Result:
        import psycopg

        try:
            return await self._run_raw(conn, sql, params, many)
        except psycopg.OperationalError as exc:
            # the server went away or dropped the transaction: what it had is gone
            if conn is self._tx:
                await self.rollback()
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        except psycopg.Error:
            # PostgreSQL aborts a transaction on any error: end it, so the lock is free
            if conn is self._tx:
                await self.rollback()
            raise

    async def _run_raw(self, conn: Any, sql: str, params: Any, many: bool) -> Result:
        async with conn.cursor(row_factory=_row_factory) as cur:
            if many:
                await cur.executemany(sql, list(params))
                return Result([], cur.rowcount)
            await cur.execute(sql, tuple(params) if params is not None else ())
            rows = await cur.fetchall() if cur.description else []
            return Result(rows, cur.rowcount)

    def _translate(self, sql: str) -> str:
        sql = dialect.strip_comments(sql)
        if _DDL.match(sql):
            sql = dialect.ddl_to_postgres(sql)
        return dialect.to_postgres(sql, lock_rows=self._lock_rows and self._mine())

    async def execute(self, sql: str, params: Iterable[Any] = (), *, many: bool = False) -> Result:
        sql = dialect.strip_comments(sql)
        if dialect.is_pragma(sql):
            return Result([], -1)
        if dialect.is_begin_immediate(sql):
            await self._begin(lock_rows=True)
            return Result([], -1)
        end = _END.match(sql)
        if end:
            await (self.rollback() if end.group(1).upper() == "ROLLBACK" else self.commit())
            return Result([], -1)
        if _WRITE.match(sql):
            await self._begin()
        statement = self._translate(sql)
        if self._mine():
            return await self._run(self._tx, statement, params, many)
        conn = await self._getconn()
        try:
            result = await self._run(conn, statement, params, many)
            await self._commit(conn)
            return result
        except Exception:
            with contextlib.suppress(Exception):  # a lost connection has nothing to roll back
                await conn.rollback()
            raise
        finally:
            await self.pool.putconn(conn)

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return (await self.execute(sql, params)).rows

    async def executemany(self, sql: str, params: Iterable[Iterable[Any]]) -> Result:
        return await self.execute(sql, [tuple(p) for p in params], many=True)

    async def commit(self) -> None:
        """Commit the running task's transaction (another task's is not touched)."""
        if not self._mine():
            return
        tx = self._end()
        try:
            await self._commit(tx)
        finally:
            await self.pool.putconn(tx)

    @staticmethod
    async def _commit(conn: Any) -> None:
        import psycopg

        try:
            await conn.commit()
        except psycopg.OperationalError as exc:
            # whether the commit landed is unknown: the caller redoes the work, and every
            # write here is idempotent by key (event ids, nudge ids, schedule ids)
            raise StoreUnavailable(f"PostgreSQL: commit failed: {exc}") from exc

    async def rollback(self, *, any_task: bool = False) -> None:
        """Roll back the running task's transaction (``any_task``: whoever's is open)."""
        if self._tx is None or not (any_task or self._mine()):
            return
        tx = self._end()
        try:
            with contextlib.suppress(Exception):  # a lost connection has nothing to undo
                await tx.rollback()
        finally:
            await self.pool.putconn(tx)

    async def _abandon(self) -> None:
        await self.rollback(any_task=True)

    async def close(self) -> None:
        await self.rollback(any_task=True)
        await self.pool.close()


async def connect(url: str, *, max_size: int = 4) -> PgConnection:
    """A :class:`PgConnection` on a new pool of up to ``max_size`` connections to ``url``."""
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=10,
        check=AsyncConnectionPool.check_connection,  # a connection a restart broke is replaced
    )
    await pool.open(wait=True, timeout=30)
    return PgConnection(pool)


async def migrate(store: Any) -> int:
    """Apply the store's migrations holding the advisory lock, so one worker does it."""
    async with store.db.pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return int(await type(store).migrate(store))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
