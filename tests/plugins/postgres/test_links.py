"""
Where the handlers get their connections, on a real server: a DSN, a given connection, a pool.

A DSN is checked before anything connects and may name the application; a given connection
that breaks cannot be replaced, so its change fails at once; a pool replaces a broken
connection, so the change is retried on the next one it lends.

Connection loss is real: another connection ends the backend with ``pg_terminate_backend``,
or the caller closes the connection it gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import psycopg
import pytest

from alien_events_api import Event, EventHandlerError, event_type
from alien_events_postgres import (
    AsyncPostgresEventHandler,
    PostgresEventHandler,
    PostgresWriteError,
    follow,
    load_changes,
    load_tree,
)
from alien_events_sdk import EventBus

BOUND = 30.0  # the bound on any wait for the server (never reached when all is well)


@event_type(tag="PgLinksWork")
class Work(Event):
    """A piece of work: a number."""

    n: int


def count(dsn):
    with psycopg.connect(dsn) as connection:
        return connection.execute("SELECT count(*) FROM alien_events").fetchone()[0]


def backend_names(dsn):
    """The application names of the other backends connected to the test's database."""
    with psycopg.connect(dsn) as connection:
        found = connection.execute(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {name for (name,) in found}


def terminate(dsn, pid):
    """End the backend ``pid`` from another connection and wait until it is gone."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + BOUND
        while connection.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchall():
            assert time.monotonic() < deadline, f"backend {pid} did not go away"
            time.sleep(0.01)


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        ("not a dsn", 'missing "=" after "not"'),
        ("dbname=x colour=blue", 'invalid connection option "colour"'),
        ("postgresql://localhost/x?nope=1", 'invalid URI query parameter: "nope"'),
    ],
)
def test_a_malformed_dsn_is_refused_before_anything_connects(dsn, reason):
    """A DSN libpq cannot parse is a ValueError quoting libpq, from the handlers and the readers."""
    expected = f"not a PostgreSQL connection string: {reason}"
    for build in (PostgresEventHandler, AsyncPostgresEventHandler, load_tree, load_changes):
        with pytest.raises(ValueError, match=expected):
            build(dsn)
    with pytest.raises(ValueError, match=expected):
        next(follow(dsn))


def test_an_application_name_in_the_dsn_is_kept(postgres_dsn):
    """A DSN naming its application_name keeps it for the handler's and the reader's sessions."""
    named = f"{postgres_dsn} application_name=billing-worker"
    with PostgresEventHandler(named) as handler, EventBus([handler]):
        Work(n=1).emit()
        assert {"billing-worker"} == backend_names(postgres_dsn)
    stream = follow(named, idle_timeout=BOUND)
    assert Work(n=1) == next(stream).event
    assert {"billing-worker"} == backend_names(postgres_dsn)
    stream.close()


@pytest.mark.parametrize("handler_class", [PostgresEventHandler, AsyncPostgresEventHandler])
def test_a_pool_without_a_connection_method_is_refused(handler_class):
    """A pool= that has no connection() context manager is a TypeError naming its type."""
    with pytest.raises(TypeError, match=r"pool must have a connection\(\) .*got list"):
        handler_class(pool=[])


BROKEN = [
    ("terminated", "AdminShutdown: terminating connection due to administrator command"),
    ("closed", "OperationalError: the connection is closed"),
]


@pytest.mark.parametrize(("how", "reason"), BROKEN)
def test_a_given_connection_that_breaks_fails_the_change_without_retrying(
    postgres_dsn, how, reason
):
    """A given connection that was terminated or closed cannot be replaced: one attempt, then raise."""
    with psycopg.connect(postgres_dsn) as connection:
        handler = PostgresEventHandler(connection=connection, retries=3, backoff=0.01)
        with EventBus([handler]):
            Work(n=1).emit()
            if how == "terminated":
                terminate(postgres_dsn, connection.info.backend_pid)
            else:
                connection.close()
            with pytest.raises(EventHandlerError) as caught:
                Work(n=2).emit()
    error = caught.value.errors[0]
    assert isinstance(error, PostgresWriteError)
    assert (1, reason) == (error.attempts, error.reason)
    assert 1 == count(postgres_dsn)


@pytest.mark.parametrize(("how", "reason"), BROKEN)
def test_a_given_async_connection_that_breaks_fails_the_change_without_retrying(
    postgres_dsn, how, reason
):
    """The async handler too makes one attempt on a given connection that was terminated or closed."""

    async def main():
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as connection:
            handler = AsyncPostgresEventHandler(connection=connection, retries=3, backoff=0.01)
            async with EventBus([handler]):
                await Work(n=1).aemit()
                if how == "terminated":
                    terminate(postgres_dsn, connection.info.backend_pid)
                else:
                    await connection.close()
                with pytest.raises(EventHandlerError) as caught:
                    await Work(n=2).aemit()
        return caught.value.errors[0]

    error = asyncio.run(main())
    assert isinstance(error, PostgresWriteError)
    assert (1, reason) == (error.attempts, error.reason)
    assert 1 == count(postgres_dsn)


class ReplacingPool:
    """A pool of one connection, replaced when it comes back broken (as psycopg_pool does)."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.current = psycopg.connect(dsn)
        self.replaced = 0

    @contextlib.contextmanager
    def connection(self):
        lent = self.current
        try:
            yield lent
        finally:
            if lent.broken or lent.closed:
                self.replaced += 1
                self.current = psycopg.connect(self.dsn)


class AsyncReplacingPool:
    """The async twin of ``ReplacingPool``."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.current = None
        self.replaced = 0

    @contextlib.asynccontextmanager
    async def connection(self):
        if self.current is None:
            self.current = await psycopg.AsyncConnection.connect(self.dsn)
        lent = self.current
        try:
            yield lent
        finally:
            if lent.broken or lent.closed:
                self.replaced += 1
                self.current = await psycopg.AsyncConnection.connect(self.dsn)


def test_a_pool_whose_connection_breaks_is_retried_on_the_next_one(postgres_dsn):
    """A change whose pooled connection was terminated is retried on the replacement and lands."""
    pool = ReplacingPool(postgres_dsn)
    with PostgresEventHandler(pool=pool, backoff=0.01) as handler, EventBus([handler]):
        Work(n=1).emit()
        terminate(postgres_dsn, pool.current.info.backend_pid)
        Work(n=2).emit()
    pool.current.close()
    assert 1 == pool.replaced
    assert 2 == count(postgres_dsn)


def test_an_async_pool_whose_connection_breaks_is_retried_on_the_next_one(postgres_dsn):
    """The async handler retries a change whose pooled connection was terminated, and it lands."""
    pool = AsyncReplacingPool(postgres_dsn)

    async def main():
        handler = AsyncPostgresEventHandler(pool=pool, backoff=0.01)
        async with handler, EventBus([handler]):
            await Work(n=1).aemit()
            terminate(postgres_dsn, pool.current.info.backend_pid)
            await Work(n=2).aemit()
        await pool.current.close()

    asyncio.run(main())
    assert 1 == pool.replaced
    assert 2 == count(postgres_dsn)
