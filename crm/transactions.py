"""Whose transaction is open on a connection the agents share: one task's at a time.

A worker's agents, timers and web views share one store connection. A transaction
shared between them lets one task's end decide another's writes: one agent's rollback
takes another's uncommitted rows along, one agent's commit commits another's half-done
work, and a failed commit drops writes a second task then believes kept. So both stores'
connections (:class:`crm.sqlite.Connection`, :class:`crm.pg.PgConnection`) give a
transaction to the task that opened it, from its first write to its commit or rollback,
and a task that writes meanwhile waits for it to end. Reads outside a transaction do not
wait.

What keeps the wait from becoming a hang:

- any error inside a transaction rolls it back (each connection does this), so a failed
  statement never leaves the lock held;
- a task that ends with its transaction still open (a bug: a write never committed) has
  it rolled back for it, and the error is logged naming the task;
- a task that waits longer than :attr:`TaskTransactions.lock_timeout` (SQLite's own busy
  timeout, 30 s) gets :class:`TransactionLockTimeout`, "database is locked" naming the
  task that holds the transaction: a :class:`nudge.errors.StoreUnavailable`, so the agents
  redo the work (nothing of it was written) rather than dead-letter it, as they do while
  a PostgreSQL that is down keeps a transaction waiting for a connection.

The trap to avoid: a task that holds a transaction and awaits another task that writes
to the same connection (``gather``, ``wait_for`` on Python 3.11, a queue) waits for
itself, until the other task's wait times out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nudge.errors import StoreUnavailable
from nudge.logs import get_logger

log = get_logger(__name__)


class TransactionLockTimeout(StoreUnavailable):
    """A task waited longer than ``lock_timeout`` for another task's transaction to end;
    nothing of its own was written."""


class TaskTransactions:
    """The owner and lock of a connection's one transaction (a mixin: call
    :meth:`_init_transactions` in ``__init__`` and implement :meth:`_abandon`)."""

    lock_timeout: float = 30.0
    """How long a task waits for another task's transaction to end, in seconds."""

    def _init_transactions(self) -> None:
        self._tx_task: asyncio.Task[Any] | None = None
        self._tx_lock = asyncio.Lock()
        """Held by the task whose transaction is open, from its first write to its end."""
        self._abandoning: set[asyncio.Task[None]] = set()

    def _mine(self) -> bool:
        """Is a transaction open, and opened by the running task?"""
        return self._tx_task is not None and self._tx_task is asyncio.current_task()

    async def _claim(self) -> None:
        """Wait for any other task's transaction to end, then make the running task the
        owner of the next one (the caller opens it)."""
        if self._tx_lock.locked():
            holder = self._tx_task
            try:
                async with asyncio.timeout(self.lock_timeout):
                    await self._tx_lock.acquire()
            except TimeoutError:
                name = holder.get_name() if holder is not None else "?"
                raise TransactionLockTimeout(
                    f"database is locked: task {name!r} has held a transaction on this "
                    f"connection for over {self.lock_timeout:g} s"
                ) from None
        else:
            await self._tx_lock.acquire()
        task = asyncio.current_task()
        assert task is not None, "a store is used from a task"
        self._tx_task = task
        task.add_done_callback(self._orphaned)

    def _release(self) -> None:
        """The owner's transaction has ended: the next task may open one."""
        task, self._tx_task = self._tx_task, None
        if task is not None:
            task.remove_done_callback(self._orphaned)
        if self._tx_lock.locked():
            self._tx_lock.release()

    def _orphaned(self, task: asyncio.Task[Any]) -> None:
        if self._tx_task is not task:
            return
        log.error(
            "a task ended with its transaction open; rolled back",
            task=task.get_name(),
            cancelled=task.cancelled(),
        )
        abandon = asyncio.get_event_loop().create_task(self._abandon_quietly())
        self._abandoning.add(abandon)
        abandon.add_done_callback(self._abandoning.discard)

    async def _abandon_quietly(self) -> None:
        try:
            await self._abandon()
        except Exception as exc:  # the store closed meanwhile: the database dropped it
            log.warning("an abandoned transaction was not rolled back", error=repr(exc))

    async def _abandon(self) -> None:
        """Roll back the open transaction, whichever task's it is, and :meth:`_release`."""
        raise NotImplementedError
