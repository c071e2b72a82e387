"""
``PostgresEventHandler`` on a real server: durable on return, wired as a plugin, and robust.

Robust: errors carry the database's message, a lost connection is replaced, and
``transaction()`` batches survive both.

Connection loss is real: another connection ends the handler's backend with
``pg_terminate_backend``; a failing statement is real: the table is dropped, or an event holds
a NUL character, which ``jsonb`` refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time

import psycopg
import pytest
from pg_server import REFUSE_AT_COMMIT

from alien_events_api import Event, EventHandlerError, EventState, event_type
from alien_events_postgres import (
    AsyncPostgresEventHandler,
    PostgresEventHandler,
    PostgresEventsError,
    PostgresWriteError,
)
from alien_events_postgres._links import Retries
from alien_events_sdk import EventBus, PluginOptionError, RecordingHandler, installed_plugins

HANDLER_APP = "alien-events-postgres"
BOUND = 30.0  # the bound on any wait for the server (never reached when all is well)


@event_type(tag="PgHandlerWork")
class Work(Event):
    """A piece of work: a number and a note."""

    n: int
    note: str = ""


def count(dsn, table="alien_events", where="true"):
    with psycopg.connect(dsn) as connection:
        if connection.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
            return 0
        return connection.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]  # noqa: S608


def handler_pids(dsn):
    with psycopg.connect(dsn) as connection:
        found = connection.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (HANDLER_APP,),
        ).fetchall()
    return {pid for (pid,) in found}


def terminate_handler_backends(dsn):
    """End the handlers' backends from another connection and wait until they are gone."""
    pids = handler_pids(dsn)
    assert pids
    with psycopg.connect(dsn) as connection:
        for pid in pids:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + BOUND
    while handler_pids(dsn) & pids:
        assert time.monotonic() < deadline, "the terminated backends did not go away"
        time.sleep(0.01)
    return pids


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_each_change_is_visible_to_another_connection_when_emit_returns(postgres_dsn):
    """After each emit, update and complete returns, another connection already sees the row."""
    with (
        PostgresEventHandler(postgres_dsn) as handler,
        psycopg.connect(postgres_dsn, autocommit=True) as other,
        EventBus([handler]),
    ):

        def row(event_id):
            query = "SELECT data->>'n', state FROM alien_events WHERE id = %s"
            return other.execute(query, (event_id,)).fetchone()

        job = Work(n=1).emit(EventState.STARTED)
        assert ("1", "started") == row(job.id)
        job.update(Work(n=2))
        assert ("2", "started") == row(job.id)
        job.complete()
        assert ("2", "success") == row(job.id)


def test_plugin_is_installed_and_builds_from_options(postgres_dsn):
    """EventBus.from_plugins(["postgres"], postgres={"dsn": ...}) stores the bus's changes."""
    assert "postgres" in installed_plugins().factories
    bus = EventBus.from_plugins(["postgres"], postgres={"dsn": postgres_dsn, "table": "opts"})
    try:
        with bus:
            Work(n=1).emit()
    finally:
        bus.close()
    assert 1 == count(postgres_dsn, "opts")


def test_plugin_builds_from_the_environment(postgres_dsn):
    """ALIEN_EVENTS_HANDLERS=postgres with ALIEN_EVENTS_POSTGRES_DSN makes a storing bus."""
    environ = {
        "ALIEN_EVENTS_HANDLERS": "postgres",
        "ALIEN_EVENTS_POSTGRES_DSN": postgres_dsn,
        "ALIEN_EVENTS_POSTGRES_TABLE": "from_env",
        "ALIEN_EVENTS_POSTGRES_RETRIES": "1",
    }
    bus = EventBus.from_env(environ)
    try:
        with bus:
            Work(n=1).emit()
            Work(n=2).emit()
    finally:
        bus.close()
    assert 2 == count(postgres_dsn, "from_env")


def test_plugin_without_a_dsn_says_which_variable_to_set():
    """The postgres plugin without a DSN is refused, naming ALIEN_EVENTS_POSTGRES_DSN."""
    with pytest.raises(PluginOptionError, match="ALIEN_EVENTS_POSTGRES_DSN"):
        EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "postgres"})


def test_unreachable_database_makes_emit_raise_with_its_message():
    """An unreachable DSN fails emit() with EventHandlerError carrying libpq's own message."""
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=5"
    with pytest.raises(psycopg.OperationalError) as direct:
        psycopg.connect(dsn)
    expected = " ".join(str(direct.value).split())
    handler = PostgresEventHandler(dsn, retries=1, backoff=0.01)
    with EventBus([handler]), pytest.raises(EventHandlerError) as caught:
        Work(n=1).emit()
    assert expected in str(caught.value)
    assert isinstance(caught.value.errors[0], PostgresWriteError)
    assert 2 == caught.value.errors[0].attempts
    handler.close()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_terminated_backend_is_replaced_and_the_next_emit_lands(postgres_dsn, retries):
    """After pg_terminate_backend the next emit reconnects and lands; with retries=0 it raises."""
    with PostgresEventHandler(postgres_dsn, retries=retries, backoff=0.01) as handler:
        with EventBus([handler]):
            Work(n=1).emit()
            old = terminate_handler_backends(postgres_dsn)
            if retries == 0:
                with pytest.raises(EventHandlerError, match="PostgresWriteError"):
                    Work(n=2).emit()
                return
            Work(n=2).emit()
        assert handler_pids(postgres_dsn).isdisjoint(old)
    assert 2 == count(postgres_dsn)


def test_a_failing_statement_raises_and_other_handlers_still_get_the_change(postgres_dsn):
    """With the table dropped, emit raises the database's error; the next handler got the change."""
    recorder = RecordingHandler()
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler, recorder]):
        Work(n=1).emit()
        with psycopg.connect(postgres_dsn) as other:
            other.execute("DROP TABLE alien_events")
        with pytest.raises(EventHandlerError, match='relation "alien_events" does not exist'):
            Work(n=2).emit()
    assert [1, 2] == [change.event.n for change in recorder.changes]


def test_a_value_postgres_refuses_is_reported_not_dropped(postgres_dsn):
    """An event with a NUL character (which jsonb refuses) raises with PostgreSQL's reason."""
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        with pytest.raises(EventHandlerError, match="unsupported Unicode escape sequence"):
            Work(n=1, note="a\x00b").emit()
        Work(n=2).emit()
    assert 1 == count(postgres_dsn)


def test_transaction_makes_changes_durable_at_its_end_only(postgres_dsn):
    """Changes inside transaction() are invisible to others until the block ends, then all there."""
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=0).emit()  # the table exists before the batch
        with handler.transaction():
            root = Work(n=1).emit(EventState.STARTED)
            Work(n=2).emit(parent=root)
            root.complete()
            assert 1 == count(postgres_dsn)
        assert 3 == count(postgres_dsn)
        assert 1 == count(postgres_dsn, where="state = 'success'")


def test_transaction_commits_when_its_block_raises(postgres_dsn):
    """A block that raises still commits the changes made in it (they happened), then re-raises."""

    def batch(handler):
        with handler.transaction():
            Work(n=1).emit()
            with handler.transaction():  # nested: joins the outer batch
                Work(n=2).emit()
            _ = 1 / 0

    with (
        PostgresEventHandler(postgres_dsn) as handler,
        EventBus([handler]),
        pytest.raises(ZeroDivisionError),
    ):
        batch(handler)
    assert 2 == count(postgres_dsn)


@pytest.mark.parametrize("when", ["mid-batch", "before-commit"])
def test_transaction_survives_a_terminated_backend(postgres_dsn, when):
    """A batch whose backend is terminated (midway, or just before its commit) is redone whole."""
    with PostgresEventHandler(postgres_dsn, backoff=0.01) as handler, EventBus([handler]):
        Work(n=0).emit()
        with handler.transaction():
            Work(n=1).emit()
            if when == "mid-batch":
                terminate_handler_backends(postgres_dsn)
            Work(n=2).emit()
            if when == "before-commit":
                terminate_handler_backends(postgres_dsn)
    assert 3 == count(postgres_dsn)


def test_a_failing_change_in_a_batch_keeps_the_others(postgres_dsn):
    """In a batch, a change PostgreSQL refuses raises; the batch's other changes are committed."""
    with (
        PostgresEventHandler(postgres_dsn) as handler,
        EventBus([handler]),
        handler.transaction(),
    ):
        Work(n=1).emit()
        with pytest.raises(EventHandlerError, match="unsupported Unicode escape"):
            Work(n=2, note="\x00").emit()
        Work(n=3).emit()
    assert 2 == count(postgres_dsn)


def test_a_given_connection_is_used_and_left_open(postgres_dsn):
    """With connection=, changes go through it; inside the caller's transaction they wait for it."""
    with psycopg.connect(postgres_dsn) as connection:
        handler = PostgresEventHandler(connection=connection)
        with EventBus([handler]):
            Work(n=1).emit()
            assert 1 == count(postgres_dsn)
            with connection.transaction():
                Work(n=2).emit()
                assert 1 == count(postgres_dsn)
            assert 2 == count(postgres_dsn)
        handler.close()
        assert not connection.closed


class TinyPool:
    """A pool in its simplest form: a connection() context manager over real connections."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.lent = 0

    @contextlib.contextmanager
    def connection(self):
        self.lent += 1
        with psycopg.connect(self.dsn) as connection:
            yield connection


def test_a_pool_lends_the_connections(postgres_dsn):
    """With pool=, each change borrows a connection from the pool and is committed on return."""
    pool = TinyPool(postgres_dsn)
    with PostgresEventHandler(pool=pool) as handler, EventBus([handler]):
        Work(n=1).emit().complete()
    assert 1 == count(postgres_dsn, where="state = 'success'")
    assert pool.lent >= 2


class OneConnectionPool:
    """A pool lending one connection (not in autocommit) again and again; notes how it comes back."""

    def __init__(self, dsn):
        self.lent = psycopg.connect(dsn)
        self.returned = []

    @contextlib.contextmanager
    def connection(self):
        try:
            yield self.lent
        finally:
            status = self.lent.info.transaction_status.name
            self.returned.append((self.lent.autocommit, status))


def test_a_pooled_connection_is_committed_per_change_and_handed_back_as_lent(postgres_dsn):
    """Each change through a non-autocommit connection is durable on return; it comes back idle."""
    pool = OneConnectionPool(postgres_dsn)
    with PostgresEventHandler(pool=pool) as handler, EventBus([handler]):
        started = Work(n=1).emit(EventState.STARTED)
        assert 1 == count(postgres_dsn)
        with pytest.raises(EventHandlerError, match="unsupported Unicode escape"):
            Work(n=2, note="\x00").emit()
        started.complete()
        assert 1 == count(postgres_dsn, where="state = 'success'")
    pool.lent.close()
    assert len(pool.returned) >= 3
    assert {(False, "IDLE")} == set(pool.returned)


def test_a_given_connection_s_transaction_settings_are_kept(postgres_dsn):
    """A connection asking for read-only transactions gets them: the write is refused, not forced."""
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=1).emit()  # the table exists
    with psycopg.connect(postgres_dsn) as connection:
        connection.read_only = True
        handler = PostgresEventHandler(connection=connection)
        with EventBus([handler]), pytest.raises(EventHandlerError, match="read-only transaction"):
            Work(n=2).emit()
    assert 1 == count(postgres_dsn)


def test_the_statement_per_change_is_short_enough_for_psycopg_to_keep_its_parse():
    """The call sent per change stays under psycopg's cached-statement length (parsed once)."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    handler = PostgresEventHandler("postgresql://localhost/never-connected", table="t" * 40)
    assert len(handler.statements.upsert) <= MAX_CACHED_STATEMENT_LENGTH


@pytest.mark.parametrize("sources", [{}, {"dsn": "x", "pool": TinyPool("x")}])
def test_exactly_one_source_is_required(sources):
    """Giving none, or two, of dsn/connection/pool is refused."""
    with pytest.raises(TypeError, match="exactly one of dsn"):
        PostgresEventHandler(**sources)


@pytest.mark.parametrize("handler_class", [PostgresEventHandler, AsyncPostgresEventHandler])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be an int >= 0, got -1"),
        ({"retries": 1.5}, "retries must be an int >= 0, got 1.5"),
        ({"retries": True}, "retries must be an int >= 0, got True"),
        ({"backoff": -0.1}, "backoff must be a number of seconds >= 0, got -0.1"),
        ({"backoff": "1"}, "backoff must be a number of seconds >= 0, got '1'"),
        ({"backoff": False}, "backoff must be a number of seconds >= 0, got False"),
    ],
)
def test_bad_retry_options_are_refused_by_both_handlers(handler_class, options, message):
    """A negative, fractional or boolean retries, or a bad backoff, is a ValueError naming it."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        handler_class("postgresql://localhost/never-connected", **options)


def test_retries_pause_twice_as_long_each_time_and_only_for_connection_errors():
    """The pauses double from backoff; only OperationalError is retried, while attempts remain."""
    retries = Retries.checked(2, 0.05)

    assert [0.05, 0.1, 0.2] == [retries.pause(attempt) for attempt in (1, 2, 3)]
    assert retries.allow(psycopg.OperationalError("gone"), 2)
    assert not retries.allow(psycopg.OperationalError("gone"), 3)
    assert not retries.allow(psycopg.errors.UniqueViolation("dup"), 1)


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "1abc", "a" * 41, ""])
def test_a_table_name_must_be_a_plain_identifier(table):
    """Table names are checked before any SQL is built (ValueError)."""
    with pytest.raises(ValueError, match="plain identifier"):
        PostgresEventHandler("postgresql://localhost/x", table=table)


def test_a_closed_handler_refuses_changes(postgres_dsn):
    """After close(), a change raises instead of vanishing."""
    handler = PostgresEventHandler(postgres_dsn)
    handler.close()
    with EventBus([handler]), pytest.raises(EventHandlerError) as caught:
        Work(n=1).emit()
    assert isinstance(caught.value.errors[0], PostgresEventsError)


def test_threads_share_one_handler(postgres_dsn):
    """Eight threads emitting through one handler store every event."""
    errors = []

    def work(worker):
        try:
            for n in range(20):
                Work(n=worker * 100 + n).emit().complete()
        except Exception as exc:
            errors.append(exc)

    with PostgresEventHandler(postgres_dsn) as handler:
        bus = EventBus([handler])
        threads = [threading.Thread(target=bus.run, args=(work, w)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [] == errors
    assert 160 == count(postgres_dsn, where="state = 'success'")


def unreachable_dsn():
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=5"


@pytest.mark.parametrize("retries", [0, 2])
def test_a_batch_that_cannot_connect_fails_its_change_after_the_retries(retries):
    """Inside transaction(), an unreachable database fails the change after retries + 1 attempts."""
    handler = PostgresEventHandler(unreachable_dsn(), retries=retries, backoff=0.01)
    with (
        EventBus([handler]),
        handler.transaction(),
        pytest.raises(EventHandlerError, match="Connection refused") as caught,
    ):
        Work(n=1).emit()
    error = caught.value.errors[0]
    assert isinstance(error, PostgresWriteError)
    assert retries + 1 == error.attempts
    handler.close()


def test_an_empty_transaction_needs_no_connection():
    """A transaction() block that delivers no change ends quietly, even with no database there."""
    handler = PostgresEventHandler(unreachable_dsn(), retries=0)
    with handler.transaction():
        pass
    handler.close()


def test_a_batch_whose_commit_is_refused_raises_and_is_not_retried(postgres_dsn):
    """A commit refused by the database (a deferred check) raises naming the batch's last change."""
    with PostgresEventHandler(postgres_dsn, retries=3) as handler, EventBus([handler]):
        Work(n=0).emit()  # the table exists
        with psycopg.connect(postgres_dsn) as other:
            other.execute(REFUSE_AT_COMMIT)
        emitted = []

        def batch():
            with handler.transaction():
                for n, note in ((1, ""), (2, "refused"), (3, "")):
                    emitted.append(Work(n=n, note=note).emit())

        with pytest.raises(PostgresWriteError) as caught:
            batch()
        Work(n=4).emit()  # the handler carries on
    refused, last = emitted[1:]
    error = caught.value
    assert (last.id, 1) == (error.change_id, error.attempts)
    assert f"RaiseException: refused at commit: {refused.id}" == error.reason.split(" CONTEXT:")[0]
    assert 2 == count(postgres_dsn)


def test_a_batch_whose_backend_dies_before_commit_raises_without_retries(postgres_dsn):
    """With retries=0, a batch whose backend is terminated before its commit raises and is lost."""
    with PostgresEventHandler(postgres_dsn, retries=0) as handler, EventBus([handler]):
        Work(n=0).emit()
        emitted = []

        def batch():
            with handler.transaction():
                emitted.extend([Work(n=1).emit(), Work(n=2).emit()])
                terminate_handler_backends(postgres_dsn)

        with pytest.raises(PostgresWriteError, match="1 attempt") as caught:
            batch()
        Work(n=3).emit()  # a new connection for the next change
    assert emitted[-1].id == caught.value.change_id
    assert 2 == count(postgres_dsn)


def test_the_handler_s_repr_names_its_table():
    """repr() shows the class and the table the handler writes to."""
    handler = PostgresEventHandler("postgresql://localhost/never-connected", table="audit")
    assert "<PostgresEventHandler table='audit'>" == repr(handler)


@pytest.mark.parametrize("handler_class", [PostgresEventHandler, AsyncPostgresEventHandler])
def test_something_that_is_not_a_change_is_refused(handler_class):
    """on_event_change with anything but Created, Updated or StateChanged is a TypeError naming it."""

    def deliver(handler, change):
        outcome = handler.on_event_change(change)
        if asyncio.iscoroutine(outcome):
            asyncio.run(outcome)

    handler = handler_class("postgresql://localhost/never-connected")
    with pytest.raises(
        TypeError, match=r"^expected a change \(Created, Updated, StateChanged\), got dict$"
    ):
        deliver(handler, {"id": "x"})
