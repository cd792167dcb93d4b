"""The SQLite store's connection: aiosqlite's, with each transaction owned by one task.

One aiosqlite connection is one SQLite transaction at a time, and the agents, timers and
web views of a worker share it. :class:`Connection` gives that transaction to the task
that opened it (:mod:`crm.transactions`, as :class:`crm.pg.PgConnection` does): a write
(``INSERT``/``UPDATE``/``DELETE``/``REPLACE``, DDL) or an explicit ``BEGIN`` waits for any
other task's transaction to end, and the transaction then lasts until that task's
``commit`` or ``rollback``; ``commit`` and ``rollback`` from a task with no transaction
of its own do nothing. Reads outside a transaction go straight through (on this one
connection they see the open transaction's rows, as they always did). Any error inside a
transaction rolls it back.

SQLite opens the transaction itself (sqlite3's implicit ``BEGIN`` before the first
write, in the same call to the connection's thread), so owning it costs no extra round
trip. The write lock of the file is taken at that first write, waiting up to the busy
timeout for another process's: a transaction that starts with a read and then writes
says ``BEGIN IMMEDIATE`` first (:meth:`crm.schedules.Schedules.due`), because SQLite
cannot upgrade a stale read snapshot and would answer "database is locked" at once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from aiosqlite.context import contextmanager

from crm.transactions import TaskTransactions
from nudge.errors import StoreUnavailable

_TX = re.compile(
    r"\s*(?:--[^\n]*\n\s*)*"  # after any leading comment lines
    r"(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|BEGIN|COMMIT|END|ROLLBACK)\b",
    re.IGNORECASE,
)
"""Statements that change the file or the transaction: run inside the task's own one."""

T = TypeVar("T")


class DatabaseLocked(StoreUnavailable, sqlite3.OperationalError):
    """Another process held the file's write lock past the busy timeout (or SQLite could not
    wait for it): nothing of the transaction was kept, so the agents redo the work instead
    of dead-lettering it. Still a ``sqlite3.OperationalError`` for code that retries on it."""


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "database is locked" in str(exc) or "database is busy" in str(exc)
    )


class Connection(TaskTransactions, aiosqlite.Connection):
    """aiosqlite's connection, one task's transaction at a time (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._init_transactions()

    @property
    def in_transaction(self) -> bool:
        """Has the running task a transaction open?"""
        return self._mine()

    async def _statement(
        self, run: Callable[[str, Any], Awaitable[T]], sql: str, parameters: Any
    ) -> T:
        if not self._mine():
            if not _TX.match(sql):
                return await run(sql, parameters)  # a read outside a transaction
            await self._claim()
        try:
            result = await run(sql, parameters)
        except BaseException as exc:
            await self.rollback()
            if _busy(exc) and not isinstance(exc, DatabaseLocked):
                raise DatabaseLocked(str(exc)) from exc
            raise
        if not super().in_transaction:  # DDL outside BEGIN, a COMMIT statement: over
            self._release()
        return result

    @contextmanager
    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> aiosqlite.Cursor:
        return await self._statement(super().execute, sql, parameters)

    @contextmanager
    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[sqlite3.Row]:
        return await self._statement(super().execute_fetchall, sql, parameters)

    @contextmanager
    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> aiosqlite.Cursor:
        return await self._statement(super().executemany, sql, parameters)

    async def commit(self) -> None:
        """Commit the running task's transaction (another task's is not touched)."""
        if not self._mine():
            return
        try:
            await super().commit()
        except BaseException as exc:
            await self._abandon()
            if _busy(exc):
                raise DatabaseLocked(str(exc)) from exc
            raise
        self._release()

    async def rollback(self) -> None:
        """Roll back the running task's transaction (another task's is not touched)."""
        if self._mine():
            await self._abandon()

    async def _abandon(self) -> None:
        try:
            await super().rollback()
        finally:
            self._release()

    async def close(self) -> None:
        try:
            await super().close()  # SQLite drops an uncommitted transaction
        finally:
            self._release()


async def connect(path: Path, *, timeout: float) -> Connection:
    """A :class:`Connection` to the file at ``path``; ``timeout``: how long a write waits
    for another connection's (SQLite's busy timeout) or another task's transaction."""
    db = Connection(lambda: sqlite3.connect(str(path), timeout=timeout))
    db.lock_timeout = timeout
    await db  # starts its thread and opens the file
    return db
