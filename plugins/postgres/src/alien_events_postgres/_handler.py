"""
``PostgresEventHandler``: every change upserted into PostgreSQL and committed before it returns.
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing
from typing import Any

import psycopg

from alien_events_postgres._errors import PostgresWriteError
from alien_events_postgres._links import (
    LINKS,
    Retries,
    choose_link,
    closed_error,
)
from alien_events_postgres._schema import ensure_schema
from alien_events_postgres._store import Statements, Write

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from alien_events_api import EventChange


def database_message(error: BaseException) -> str:
    """The database's (or libpq's) own words for an error, on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def runs_alone(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """
    Whether one statement on ``connection`` may be a transaction of its own (autocommit mode).

    Yes outside any transaction, unless the connection asks its transactions for an isolation
    level or access mode (then they keep their ``BEGIN``). The upsert is one statement, atomic
    on its own and committed when it returns: no ``BEGIN`` and ``COMMIT`` round trips.
    """
    if connection.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
        return False  # inside the caller's transaction: join it
    plain = (connection.isolation_level, connection.read_only, connection.deferrable)
    return bool(connection.autocommit) or plain == (None, None, None)


@typing.final
class _Batch:
    """The writes of an open ``transaction()`` and what holds its connection and transaction."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.stack: contextlib.ExitStack | None = None
        self.connection: psycopg.Connection[Any] | None = None


@typing.final
class PostgresEventHandler:
    """
    Upserts each change into a PostgreSQL table, committed before ``on_event_change`` returns.

    Give exactly one of ``dsn`` (the handler opens its own connection when first needed),
    ``connection`` (a ``psycopg.Connection`` of yours: used as it is and never closed; inside a
    transaction of yours the changes join it and are durable when you commit) or ``pool``
    (anything with a ``connection()`` context manager, such as ``psycopg_pool.ConnectionPool``).
    The table is created, or migrated, on first use. Writes are idempotent and
    order-insensitive (see ``alien_events_postgres._store``), so redelivered, duplicated or
    reordered changes give the same rows. A connection error is retried ``retries`` times,
    reconnecting, after ``backoff``, then twice that, and so on; any other database error, or
    the last retry's, raises ``PostgresWriteError`` with the database's message. Safe to share
    between threads: one lock serialises the handler's writes.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        connection: psycopg.Connection[Any] | None = None,
        pool: Any = None,
        table: str = "alien_events",
        retries: int = 3,
        backoff: float = 0.05,
        channel: str = "alien_events",
    ) -> None:
        self._link = choose_link(dsn, connection, pool, LINKS)
        self._retries = Retries.checked(retries, backoff)
        self.statements = Statements(table, channel)
        self.table = table
        self._lock = threading.RLock()
        self._batch: _Batch | None = None
        self._schema_ready = False
        self._closed = False
        self._cursor: psycopg.Cursor[Any] | None = None  # kept: a new one per change costs

    # -- taking changes ---------------------------------------------------------------------

    def on_event_change(self, change: EventChange) -> None:
        """Store the change (committed on return, or at the end of an open ``transaction()``)."""
        write = self.statements.prepare(change)
        with self._lock:
            if self._closed:
                raise closed_error()
            if self._batch is not None:
                self._write_in_batch(self._batch, write)
                return
            self._attempt(write.id, lambda connection: self._apply(connection, [write]))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """
        Write the changes delivered inside the block in one transaction, committed at its end.

        Changes inside are durable only once the block ends (also when it ends by an
        exception: they happened). Other threads' changes wait for the block to end; a nested
        block joins the outer one.
        """
        with self._lock:
            if self._batch is not None:
                yield
                return
            batch = self._batch = _Batch()
            try:
                yield
            finally:
                self._batch = None
                self._finish(batch)

    # -- plumbing ----------------------------------------------------------------------------

    def _ready(self, connection: psycopg.Connection[Any]) -> None:
        if not self._schema_ready:
            ensure_schema(connection, self.table)
            self._schema_ready = True

    def _execute(self, connection: psycopg.Connection[Any], write: Write) -> None:
        cursor = self._cursor
        if cursor is None or cursor.connection is not connection:
            cursor = self._cursor = connection.cursor()
        cursor.execute(self.statements.upsert, write.params)

    def _apply(self, connection: psycopg.Connection[Any], writes: list[Write]) -> None:
        if len(writes) == 1 and runs_alone(connection):
            self._execute_alone(connection, writes[0])
            return
        with connection.transaction():
            for write in writes:
                self._execute(connection, write)

    def _execute_alone(self, connection: psycopg.Connection[Any], write: Write) -> None:
        """Run the write in autocommit mode, switched on for it if need be (no I/O: idle)."""
        if connection.autocommit:
            self._execute(connection, write)
            return
        connection.autocommit = True
        try:
            self._execute(connection, write)
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection is dropped anyway
                connection.autocommit = False

    def _retryable(self, error: psycopg.Error, attempts: int) -> bool:
        return self._retries.allow(error, attempts) and self._link.usable()

    def _pause(self, attempts: int) -> None:
        self._link.reset()
        time.sleep(self._retries.pause(attempts))

    def _attempt(self, change_id: str, work: Callable[[psycopg.Connection[Any]], None]) -> None:
        """Run ``work`` on a connection, retrying connection errors; raise what remains."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with self._link.connection() as connection:
                    self._ready(connection)
                    work(connection)
            except psycopg.Error as exc:
                if not self._retryable(exc, attempts):
                    raise PostgresWriteError(change_id, attempts, database_message(exc)) from exc
                self._pause(attempts)
            else:
                return

    def _open(self, batch: _Batch) -> psycopg.Connection[Any]:
        if batch.connection is None:
            stack = contextlib.ExitStack()
            try:
                connection = stack.enter_context(self._link.connection())
                self._ready(connection)
                stack.enter_context(connection.transaction())
            except BaseException as exc:
                stack.__exit__(type(exc), exc, exc.__traceback__)
                raise
            batch.stack, batch.connection = stack, connection
        return batch.connection

    def _drop(self, batch: _Batch, error: BaseException) -> None:
        """Roll the batch's transaction back and give its connection up."""
        stack, batch.stack, batch.connection = batch.stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.__exit__(type(error), error, error.__traceback__)

    def _replay(self, batch: _Batch, writes: list[Write], change_id: str, attempts: int) -> None:
        """Open a new transaction and redo ``writes`` in it, retrying connection errors."""
        while True:
            attempts += 1
            try:
                connection = self._open(batch)
                for write in writes:
                    self._execute(connection, write)
            except psycopg.Error as exc:
                self._drop(batch, exc)
                if not self._retryable(exc, attempts):
                    raise PostgresWriteError(change_id, attempts, database_message(exc)) from exc
                self._pause(attempts)
            else:
                return

    def _write_in_batch(self, batch: _Batch, write: Write) -> None:
        try:
            self._execute(self._open(batch), write)
        except psycopg.Error as exc:
            self._drop(batch, exc)
            if not self._retryable(exc, 1):
                if batch.writes:  # keep the batch's earlier changes, then report this one
                    self._replay(batch, batch.writes, batch.writes[-1].id, 0)
                raise PostgresWriteError(write.id, 1, database_message(exc)) from exc
            self._pause(1)
            self._replay(batch, [*batch.writes, write], write.id, 1)
        batch.writes.append(write)

    def _finish(self, batch: _Batch) -> None:
        """Commit the batch; on a connection error, redo it all in a new transaction."""
        stack, batch.stack, batch.connection = batch.stack, None, None
        if stack is None:
            return
        try:
            stack.close()
        except psycopg.Error as exc:
            if not batch.writes or not self._retryable(exc, 1):
                last = batch.writes[-1].id if batch.writes else "?"
                raise PostgresWriteError(last, 1, database_message(exc)) from exc
            self._pause(1)
            self._attempt(batch.writes[-1].id, lambda c: self._apply(c, batch.writes))

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the handler's own connection (not a given one or a pool); later changes raise."""
        with self._lock:
            self._closed = True
            self._link.close()

    def __enter__(self) -> PostgresEventHandler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresEventHandler table={self.table!r}>"
