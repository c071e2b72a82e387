"""
``AsyncPostgresEventHandler`` on a real server, awaited by ``aemit`` or run for sync emits.

It is run on the bus's handler loop for sync emits, batches with ``atransaction()``, and
reconnects after a terminated backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time

import psycopg
import pytest
from pg_server import REFUSE_AT_COMMIT
from psycopg import sql

from alien_events_api import Created, Event, EventHandlerError, EventState, event_type
from alien_events_postgres import (
    AsyncPostgresEventHandler,
    PostgresEventsError,
    PostgresWriteError,
)
from alien_events_sdk import EventBus, RecordingHandler

HANDLER_APP = "alien-events-postgres"
BOUND = 30.0  # the bound on any wait for the server (never reached when all is well)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LOCK_THREAD = "alien-events-postgres-lock"  # the name of the thread a lock waiter waits on


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


PIDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
)


def handler_pids(dsn):
    with psycopg.connect(dsn) as connection:
        return {pid for (pid,) in connection.execute(PIDS, (HANDLER_APP,)).fetchall()}


def terminate_handler_backends(dsn):
    """End the handlers' backends from another connection and wait until they are gone."""
    query = PIDS
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


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_closed_async_handler_refuses_changes_and_batches(postgres_dsn):
    """After aclose(), a change and an atransaction() both raise instead of vanishing."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn)
        await handler.aclose()
        async with EventBus([handler]):
            with pytest.raises(EventHandlerError) as caught:
                await Work(n=1).aemit()
        assert isinstance(caught.value.errors[0], PostgresEventsError)
        with pytest.raises(PostgresEventsError, match="handler is closed"):
            async with handler.atransaction():
                pass

    asyncio.run(main())
    assert 0 == count(postgres_dsn)


def test_async_changes_join_the_transaction_of_a_given_connection(postgres_dsn):
    """With connection=, changes made inside the caller's transaction are durable at its commit."""

    async def main():
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as connection:
            handler = AsyncPostgresEventHandler(connection=connection)
            async with EventBus([handler]):
                await Work(n=1).aemit()
                async with connection.transaction():
                    await Work(n=2).aemit()
                    assert 1 == count(postgres_dsn)
                assert 2 == count(postgres_dsn)

    asyncio.run(main())


@pytest.mark.parametrize("retries", [0, 2])
def test_an_async_batch_that_cannot_connect_fails_its_change_after_the_retries(retries):
    """Inside atransaction(), an unreachable database fails the change after retries + 1 attempts."""
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=5"

    async def main():
        handler = AsyncPostgresEventHandler(dsn, retries=retries, backoff=0.01)
        async with handler, EventBus([handler]), handler.atransaction():
            with pytest.raises(EventHandlerError, match="Connection refused") as caught:
                await Work(n=1).aemit()
        return caught.value.errors[0]

    error = asyncio.run(main())
    assert isinstance(error, PostgresWriteError)
    assert retries + 1 == error.attempts


def test_an_async_batch_whose_backend_dies_before_commit_is_redone_whole(postgres_dsn):
    """A batch whose backend is terminated just before its commit is written again, all of it."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn, backoff=0.01)
        async with handler, EventBus([handler]):
            await Work(n=0).aemit()
            async with handler.atransaction():
                root = await Work(n=1).aemit(EventState.STARTED)
                await Work(n=2).aemit(parent=root)
                terminate_handler_backends(postgres_dsn)

    asyncio.run(main())
    assert 3 == count(postgres_dsn)
    assert 1 == count(postgres_dsn, "state = 'started'")


def test_an_async_batch_whose_commit_is_refused_raises_and_is_not_retried(postgres_dsn):
    """A commit refused by the database (a deferred check) raises naming the batch's last change."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn, retries=3)
        async with handler, EventBus([handler]):
            await Work(n=0).aemit()  # the table exists
            with psycopg.connect(postgres_dsn) as other:
                other.execute(REFUSE_AT_COMMIT)
            emitted = []

            async def batch():
                async with handler.atransaction():
                    for n, note in ((1, ""), (2, "refused"), (3, "")):
                        emitted.append(await Work(n=n, note=note).aemit())

            with pytest.raises(PostgresWriteError) as caught:
                await batch()
            await Work(n=4).aemit()  # the handler carries on
        return caught.value, *emitted[1:]

    error, refused, last = asyncio.run(main())
    assert (last.id, 1) == (error.change_id, error.attempts)
    assert f"RaiseException: refused at commit: {refused.id}" == error.reason.split(" CONTEXT:")[0]
    assert 2 == count(postgres_dsn)


def test_closing_from_inside_a_running_loop_closes_the_handler(postgres_dsn):
    """bus.close() (the sync close) called inside async code closes the handler and its connection."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn)
        bus = EventBus([handler])
        async with bus:
            await Work(n=1).aemit()
        assert handler_pids(postgres_dsn)
        bus.close()
        deadline = time.monotonic() + BOUND
        while handler_pids(postgres_dsn):
            assert time.monotonic() < deadline, "the handler's backend is still there"
            await asyncio.sleep(0.01)
        with pytest.raises(PostgresEventsError, match="handler is closed"):
            await handler.on_event_change(Created(id="late", created_at=T0, event=Work(n=2)))

    asyncio.run(main())
    assert 1 == count(postgres_dsn)


def test_the_async_handler_s_repr_names_its_table():
    """repr() shows the class and the table the handler writes to."""
    handler = AsyncPostgresEventHandler("postgresql://localhost/never-connected", table="audit")
    assert "<AsyncPostgresEventHandler table='audit'>" == repr(handler)


def lock_threads():
    """The threads waiting for (or handing over) a handler's lock right now."""
    return {thread for thread in threading.enumerate() if thread.name == LOCK_THREAD}


async def new_lock_thread(before):
    """Wait until a lock waiter's thread that is not in ``before`` runs, and return it."""
    deadline = time.monotonic() + BOUND
    while not lock_threads() - before:
        assert time.monotonic() < deadline, "no task started waiting for the handler's lock"
        await asyncio.sleep(0.001)
    (thread,) = lock_threads() - before
    return thread


def joined(thread):
    """Wait for ``thread`` to end (failing the test if it does not) and return it."""
    thread.join(BOUND)
    assert not thread.is_alive(), f"{thread.name} did not end"
    return thread


async def store(handler, change):
    """Store the change, failing the test if the handler's lock never comes free."""
    try:
        await asyncio.wait_for(handler.on_event_change(change), BOUND)
    except TimeoutError:
        pytest.fail("the handler's lock was never given back")


def test_a_waiter_cancelled_as_the_lock_reaches_it_gives_the_lock_back(postgres_dsn):
    """A task cancelled after the lock was handed to it, before it resumed, releases the lock."""
    handler = AsyncPostgresEventHandler(postgres_dsn)
    entered, release = threading.Event(), threading.Event()

    async def hold():  # on another thread's loop: holds the lock until told
        async with handler.atransaction():
            entered.set()
            release.wait(BOUND)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))

    async def main():
        holder.start()
        assert entered.wait(BOUND), "the holder never took the lock"
        before = lock_threads()
        waiter = asyncio.create_task(
            handler.on_event_change(Created(id="cancelled", created_at=T0, event=Work(n=1)))
        )
        hand_over = await new_lock_thread(before)
        # Block this loop while the lock is released and handed over (queued on this loop),
        # then queue the cancellation behind the hand-over: the waiter owns the lock when the
        # cancellation reaches it.
        release.set()
        joined(hand_over)
        asyncio.get_running_loop().call_soon(waiter.cancel)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        joined(holder)
        await store(handler, Created(id="after", created_at=T0, event=Work(n=2)))
        await handler.aclose()

    asyncio.run(main())
    with psycopg.connect(postgres_dsn) as connection:
        assert [("after",)] == connection.execute("SELECT id FROM alien_events").fetchall()


def test_a_loop_closed_while_its_task_waits_does_not_keep_the_lock(postgres_dsn):
    """A task whose event loop ends while it waits for the lock leaves the lock free for others."""
    handler = AsyncPostgresEventHandler(postgres_dsn)
    waiting = []

    async def wait_then_leave():  # on another thread: its loop closes with the task waiting
        before = lock_threads()
        asyncio.create_task(  # noqa: RUF006  (left pending on purpose: asyncio.run cancels it)
            handler.on_event_change(Created(id="abandoned", created_at=T0, event=Work(n=1)))
        )
        waiting.append(await new_lock_thread(before))

    async def main():
        async with handler.atransaction():
            await handler.on_event_change(Created(id="batched", created_at=T0, event=Work(n=0)))
            leaver = threading.Thread(target=asyncio.run, args=(wait_then_leave(),))
            leaver.start()
            joined(leaver)
        assert waiting, "the other loop's task never waited for the lock"
        joined(waiting[0])  # it got the lock once the batch ended, found no loop, let it go
        await store(handler, Created(id="after", created_at=T0, event=Work(n=2)))
        await handler.aclose()

    asyncio.run(main())
    with psycopg.connect(postgres_dsn) as connection:
        found = connection.execute("SELECT id FROM alien_events ORDER BY id").fetchall()
    assert [("after",), ("batched",)] == found


def test_tasks_gathered_inside_one_atransaction_share_its_transaction(postgres_dsn):
    """Changes from tasks gathered inside atransaction() are all committed together at its end."""

    async def main():
        handler = AsyncPostgresEventHandler(postgres_dsn)
        async with handler, EventBus([handler]):
            await Work(n=0).aemit()  # the table exists, the connection is open
            async with handler.atransaction():
                await asyncio.gather(*(Work(n=n).aemit() for n in range(1, 6)))
                assert 1 == count(postgres_dsn)

    asyncio.run(main())
    assert 6 == count(postgres_dsn)


def table_count(dsn, table):
    with psycopg.connect(dsn) as connection:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        return connection.execute(query).fetchone()[0]


def test_nested_batches_of_two_async_handlers_each_commit_their_changes(postgres_dsn):
    """Inside atransaction() blocks of two handlers on one bus, each handler batches its changes."""
    first = AsyncPostgresEventHandler(postgres_dsn, table="first_events")
    second = AsyncPostgresEventHandler(postgres_dsn, table="second_events")

    async def deliver_in_both_batches():
        async with first.atransaction(), second.atransaction():
            before = lock_threads()
            delivery = asyncio.create_task(Work(n=1).aemit())
            deadline = time.monotonic() + BOUND
            # Done, or stuck: a lock waiter inside both batches can only wait for their locks.
            while not delivery.done() and not lock_threads() - before:
                assert time.monotonic() < deadline, "the change was neither stored nor stuck"
                await asyncio.sleep(0.001)
            stuck = not delivery.done()
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
            assert not stuck, "the change waits for the lock of a batch it is inside"
            assert (1, 1) == (
                table_count(postgres_dsn, "first_events"),
                table_count(postgres_dsn, "second_events"),
            )

    async def main():
        async with first, second, EventBus([first, second]):
            await Work(n=0).aemit()  # both tables exist
            await deliver_in_both_batches()

    asyncio.run(main())
    assert (2, 2) == (
        table_count(postgres_dsn, "first_events"),
        table_count(postgres_dsn, "second_events"),
    )
