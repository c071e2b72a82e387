"""
``AsyncPostgresEventHandler``: the async twin of ``PostgresEventHandler``, on psycopg's async API.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg

from alien_events_postgres._errors import PostgresWriteError
from alien_events_postgres._handler import database_message, runs_alone
from alien_events_postgres._links import (
    ASYNC_LINKS,
    Retries,
    choose_link,
    closed_error,
)
from alien_events_postgres._schema import aensure_schema
from alien_events_postgres._store import Statements, Write

if typing.TYPE_CHECKING:
    from types import TracebackType

    from alien_events_api import EventChange

Work = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


@typing.final
class _Batch:
    """The writes of an open ``atransaction()`` and what holds its connection and transaction."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.stack: contextlib.AsyncExitStack | None = None
        self.connection: psycopg.AsyncConnection[Any] | None = None
        # Tasks gathered inside the block write one at a time: the first opens the transaction.
        self.turn = asyncio.Lock()


async def _acquire_in_thread(lock: threading.Lock) -> None:
    """
    Wait for ``lock`` on a thread of its own, so the event loop keeps running meanwhile.

    Not the loop's default executor: its threads may all be waiting here while the lock's
    holder needs one (psycopg resolves host names there), which would never end.
    """
    loop = asyncio.get_running_loop()
    acquired: asyncio.Future[None] = loop.create_future()

    def hand_over() -> None:
        if acquired.cancelled():  # the waiter went away: nobody will release it
            lock.release()
        else:
            acquired.set_result(None)

    def wait() -> None:
        lock.acquire()
        try:
            loop.call_soon_threadsafe(hand_over)
        except RuntimeError:  # the loop is closed
            lock.release()

    threading.Thread(target=wait, name="alien-events-postgres-lock", daemon=True).start()
    try:
        await acquired
    except asyncio.CancelledError:
        if acquired.done() and not acquired.cancelled():  # handed over, then cancelled
            lock.release()
        raise


@typing.final
class AsyncPostgresEventHandler:
    """
    Async twin of ``PostgresEventHandler``: ``async def on_event_change``, on ``AsyncConnection``.

    ``connection`` is a ``psycopg.AsyncConnection``, ``pool`` anything with an async
    ``connection()`` context manager (``psycopg_pool.AsyncConnectionPool``). The bus awaits it
    on ``aemit`` and runs it on its handler loop thread for sync emits; one lock (which works
    across threads and event loops) serialises its writes.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        connection: psycopg.AsyncConnection[Any] | None = None,
        pool: Any = None,
        table: str = "alien_events",
        retries: int = 3,
        backoff: float = 0.05,
        channel: str = "alien_events",
    ) -> None:
        self._link = choose_link(dsn, connection, pool, ASYNC_LINKS)
        self._retries = Retries.checked(retries, backoff)
        self.statements = Statements(table, channel)
        self.table = table
        self._lock = threading.Lock()
        self._batch: _Batch | None = None
        # This handler's batch open in this context: a task inside ``atransaction()`` joins
        # it without locking. One variable per handler, so batches of two handlers can nest.
        self._current_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
            f"alien_events_postgres_batch_{id(self):x}", default=None
        )
        self._schema_ready = False
        self._closed = False
        self._cursor: psycopg.AsyncCursor[Any] | None = None  # kept: a new one per change costs

    # -- taking changes ---------------------------------------------------------------------

    async def on_event_change(self, change: EventChange) -> None:
        """Store the change (committed on return, or at the end of an open ``atransaction()``)."""
        write = self.statements.prepare(change)
        batch = self._current_batch.get()
        if batch is not None and batch is self._batch:
            async with batch.turn:
                await self._write_in_batch(batch, write)
            return
        async with self._locked():
            if self._closed:
                raise closed_error()
            await self._attempt(write.id, lambda connection: self._apply(connection, [write]))

    @contextlib.asynccontextmanager
    async def atransaction(self) -> AsyncIterator[None]:
        """
        Write the changes delivered inside the block in one transaction, committed at its end.

        Changes inside are durable only once the block ends (also when it ends by an
        exception). Use the async emits (``aemit``...) inside: other callers wait for the block.
        """
        current = self._current_batch.get()
        if current is not None and current is self._batch:
            yield
            return
        async with self._locked():
            if self._closed:
                raise closed_error()
            batch = self._batch = _Batch()
            token = self._current_batch.set(batch)
            try:
                yield
            finally:
                self._current_batch.reset(token)
                self._batch = None
                await self._finish(batch)

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Hold the handler's lock without blocking the event loop while waiting for it."""
        if not self._lock.acquire(blocking=False):
            await _acquire_in_thread(self._lock)
        try:
            yield
        finally:
            self._lock.release()

    # -- plumbing ----------------------------------------------------------------------------

    async def _ready(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if not self._schema_ready:
            await aensure_schema(connection, self.table)
            self._schema_ready = True

    async def _execute(self, connection: psycopg.AsyncConnection[Any], write: Write) -> None:
        cursor = self._cursor
        if cursor is None or cursor.connection is not connection:
            cursor = self._cursor = connection.cursor()
        await cursor.execute(self.statements.upsert, write.params)

    async def _apply(self, connection: psycopg.AsyncConnection[Any], writes: list[Write]) -> None:
        if len(writes) == 1 and runs_alone(connection):
            await self._execute_alone(connection, writes[0])
            return
        async with connection.transaction():
            for write in writes:
                await self._execute(connection, write)

    async def _execute_alone(self, connection: psycopg.AsyncConnection[Any], write: Write) -> None:
        """Run the write in autocommit mode, switched on for it if need be (no I/O: idle)."""
        if connection.autocommit:
            await self._execute(connection, write)
            return
        await connection.set_autocommit(True)
        try:
            await self._execute(connection, write)
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection is dropped anyway
                await connection.set_autocommit(False)

    def _retryable(self, error: psycopg.Error, attempts: int) -> bool:
        return self._retries.allow(error, attempts) and self._link.usable()

    async def _pause(self, attempts: int) -> None:
        await self._link.reset()
        await asyncio.sleep(self._retries.pause(attempts))

    async def _attempt(self, change_id: str, work: Work) -> None:
        """Run ``work`` on a connection, retrying connection errors; raise what remains."""
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self._link.connection() as connection:
                    await self._ready(connection)
                    await work(connection)
            except psycopg.Error as exc:
                if not self._retryable(exc, attempts):
                    raise PostgresWriteError(change_id, attempts, database_message(exc)) from exc
                await self._pause(attempts)
            else:
                return

    async def _open(self, batch: _Batch) -> psycopg.AsyncConnection[Any]:
        if batch.connection is None:
            stack = contextlib.AsyncExitStack()
            try:
                connection = await stack.enter_async_context(self._link.connection())
                await self._ready(connection)
                await stack.enter_async_context(connection.transaction())
            except BaseException as exc:
                await stack.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            batch.stack, batch.connection = stack, connection
        return batch.connection

    async def _drop(self, batch: _Batch, error: BaseException) -> None:
        stack, batch.stack, batch.connection = batch.stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.__aexit__(type(error), error, error.__traceback__)

    async def _replay(
        self, batch: _Batch, writes: list[Write], change_id: str, attempts: int
    ) -> None:
        while True:
            attempts += 1
            try:
                connection = await self._open(batch)
                for write in writes:
                    await self._execute(connection, write)
            except psycopg.Error as exc:
                await self._drop(batch, exc)
                if not self._retryable(exc, attempts):
                    raise PostgresWriteError(change_id, attempts, database_message(exc)) from exc
                await self._pause(attempts)
            else:
                return

    async def _write_in_batch(self, batch: _Batch, write: Write) -> None:
        try:
            await self._execute(await self._open(batch), write)
        except psycopg.Error as exc:
            await self._drop(batch, exc)
            if not self._retryable(exc, 1):
                if batch.writes:  # keep the batch's earlier changes, then report this one
                    await self._replay(batch, batch.writes, batch.writes[-1].id, 0)
                raise PostgresWriteError(write.id, 1, database_message(exc)) from exc
            await self._pause(1)
            await self._replay(batch, [*batch.writes, write], write.id, 1)
        batch.writes.append(write)

    async def _finish(self, batch: _Batch) -> None:
        stack, batch.stack, batch.connection = batch.stack, None, None
        if stack is None:
            return
        try:
            await stack.aclose()
        except psycopg.Error as exc:
            if not batch.writes or not self._retryable(exc, 1):
                last = batch.writes[-1].id if batch.writes else "?"
                raise PostgresWriteError(last, 1, database_message(exc)) from exc
            await self._pause(1)
            await self._attempt(batch.writes[-1].id, lambda c: self._apply(c, batch.writes))

    # -- the end -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the handler's own connection (not a given one or a pool); later changes raise."""
        async with self._locked():
            self._closed = True
            await self._link.close()

    def close(self) -> None:
        """Sync ``aclose()`` (for ``EventBus.close()``), run on an event loop of its own."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.aclose())
            return
        closer = threading.Thread(target=asyncio.run, args=(self.aclose(),), name="pg-close")
        closer.start()
        closer.join()

    async def __aenter__(self) -> AsyncPostgresEventHandler:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncPostgresEventHandler table={self.table!r}>"
