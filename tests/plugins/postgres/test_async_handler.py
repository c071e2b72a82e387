"""
``AsyncPostgresEventHandler`` on a real server, awaited by ``aemit`` or run for sync emits.

It is run on the bus's handler loop for sync emits, batches with ``atransaction()``, and
reconnects after a terminated backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import psycopg
import pytest

from alien_events_api import Event, EventHandlerError, EventState, event_type
from alien_events_postgres import AsyncPostgresEventHandler, PostgresWriteError
from alien_events_sdk import EventBus, RecordingHandler

HANDLER_APP = "alien-events-postgres"
BOUND = 30.0  # the bound on any wait for the server (never reached when all is well)


@event_type(tag="PgAsyncWork")
class Work(Event):
    """A piece of work: a number and a note."""

    n: int
    note: str = ""


def count(dsn, where="true"):
    with psycopg.connect(dsn) as connection:
        if connection.execute("SELECT to_regclass('alien_events')").fetchone() == (None,):
            return 0
        return connection.execute(f"SELECT count(*) FROM alien_events WHERE {where}").fetchone()[0]  # noqa: S608


def terminate_handler_backends(dsn):
    """End the handlers' backends from another connection and wait until they are gone."""
    query = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s"
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        pids = {pid for (pid,) in connection.execute(query, (HANDLER_APP,)).fetchall()}
        assert pids
        for pid in pids:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + BOUND
        while {p for (p,) in connection.execute(query, (HANDLER_APP,)).fetchall()} & pids:
            assert time.monotonic() < deadline, "the terminated backends did not go away"
            time.sleep(0.01)


def test_aemit_awaits_the_handler_and_the_row_is_there_on_return(postgres_dsn):
    """Each aemit, aupdate and acomplete returns with its change committed."""

    async def main():
        async with AsyncPostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
            job = await Work(n=1).aemit(EventState.STARTED)
            assert 1 == count(postgres_dsn, "state = 'started'")
            await job.aupdate(Work(n=2))
            assert 1 == count(postgres_dsn, "data->>'n' = '2'")
            await job.acomplete()
            assert 1 == count(postgres_dsn, "state = 'success'")

    asyncio.run(main())


def test_sync_emits_run_the_async_handler_on_the_handler_loop(postgres_dsn):
    """A sync emit reaches the async handler (on the bus's loop thread) and is stored on return."""
    handler = AsyncPostgresEventHandler(postgres_dsn)
    recorder = RecordingHandler()
    bus = EventBus([handler, recorder])
    try:
        with bus:
            root = Work(n=1).emit(EventState.STARTED)
            Work(n=2).emit(parent=root)
            assert 2 == count(postgres_dsn)
            root.complete()
    finally:
        bus.close()  # closes the handler through its sync close()
    assert 1 == count(postgres_dsn, "state = 'success'")
    assert 3 == len(recorder.changes)


def test_atransaction_commits_at_the_end_of_the_block(postgres_dsn):
    """Changes inside atransaction() are invisible to others until the block ends."""

    async def main():
        async with AsyncPostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
            await Work(n=0).aemit()
            async with handler.atransaction():
                root = await Work(n=1).aemit(EventState.STARTED)
                await Work(n=2).aemit(parent=root)
                async with handler.atransaction():  # nested: joins the outer batch
                    await root.acomplete()
                assert 1 == count(postgres_dsn)
            assert 3 == count(postgres_dsn)

    asyncio.run(main())


def test_async_handler_reconnects_after_a_terminated_backend(postgres_dsn):
    """After pg_terminate_backend, the next aemit reconnects, retries and lands."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn, backoff=0.01)
        async with handler, EventBus([handler]):
            await Work(n=1).aemit()
            terminate_handler_backends(postgres_dsn)
            await Work(n=2).aemit()
            async with handler.atransaction():
                await Work(n=3).aemit()
                terminate_handler_backends(postgres_dsn)
                await Work(n=4).aemit()

    asyncio.run(main())
    assert 4 == count(postgres_dsn)


def test_async_errors_carry_the_database_message(postgres_dsn):
    """A change PostgreSQL refuses fails aemit with its reason; the batch keeps the others."""

    async def main():
        async with AsyncPostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
            with pytest.raises(EventHandlerError, match="unsupported Unicode escape") as caught:
                await Work(n=0, note="\x00").aemit()
            assert isinstance(caught.value.errors[0], PostgresWriteError)
            async with handler.atransaction():
                await Work(n=1).aemit()
                with pytest.raises(EventHandlerError, match="unsupported Unicode escape"):
                    await Work(n=2, note="\x00").aemit()
                await Work(n=3).aemit()

    asyncio.run(main())
    assert 2 == count(postgres_dsn)


def test_async_handler_with_a_given_connection_and_a_pool(postgres_dsn):
    """connection= uses (and leaves open) an AsyncConnection; pool= borrows from an async pool."""

    class TinyAsyncPool:
        def __init__(self):
            self.lent = 0

        @contextlib.asynccontextmanager
        async def connection(self):
            self.lent += 1
            async with await psycopg.AsyncConnection.connect(postgres_dsn) as connection:
                yield connection

    async def main():
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as connection:
            handler = AsyncPostgresEventHandler(connection=connection)
            async with EventBus([handler]):
                await Work(n=1).aemit()
            await handler.aclose()
            assert not connection.closed
        pool = TinyAsyncPool()
        async with AsyncPostgresEventHandler(pool=pool) as handler, EventBus([handler]):
            await Work(n=2).aemit()
        assert pool.lent >= 1

    asyncio.run(main())
    assert 2 == count(postgres_dsn)


def test_concurrent_tasks_share_one_async_handler(postgres_dsn):
    """Twenty tasks awaiting one async handler at once all get their changes stored."""

    async def main():
        async with AsyncPostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
            await asyncio.gather(*(Work(n=n).aemit() for n in range(20)))

    asyncio.run(main())
    assert 20 == count(postgres_dsn)


def test_a_cancelled_waiter_does_not_keep_the_lock(postgres_dsn):
    """A task cancelled while it waits behind a batch leaves the handler usable afterwards."""

    async def scenario(handler):
        await Work(n=0).aemit()
        entered, release = asyncio.Event(), asyncio.Event()

        async def hold():
            async with handler.atransaction():
                entered.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(entered.wait(), BOUND)
        waiter = asyncio.create_task(Work(n=1).aemit())
        for _ in range(10):  # let it reach its wait for the lock
            await asyncio.sleep(0)
        waiter.cancel()
        release.set()
        await asyncio.wait_for(holder, BOUND)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(Work(n=2).aemit(), BOUND)

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn)
        try:
            async with EventBus([handler]):
                await scenario(handler)
        finally:
            await asyncio.wait_for(handler.aclose(), BOUND)

    asyncio.run(main())
    assert 2 == count(postgres_dsn)
