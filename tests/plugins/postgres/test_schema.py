"""
The versioned schema on a real server: created on first use, idempotent, and safe.

Safe when many threads or processes start at once, refused when newer than the code,
migrated when older.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
import threading

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from alien_events_api import (
    AlienError,
    Created,
    Event,
    EventHandlerError,
    EventState,
    StateChanged,
    event_type,
)
from alien_events_postgres import (
    SCHEMA_VERSION,
    AsyncPostgresEventHandler,
    PostgresEventHandler,
    PostgresWriteError,
    SchemaVersionError,
    ensure_schema,
    load_tree,
    schema_version,
)
from alien_events_sdk import EventBus

BOUND = 60.0  # the bound on any wait for a child process (never reached when all is well)
COLUMNS = [
    "id",
    "parent_id",
    "root_id",
    "type",
    "data",
    "state",
    "error",
    "created_at",
    "updated_at",
    "epoch",
    "seq",
    "data_epoch",
    "data_seq",
    "data_at",
    "data_tie",
    "state_epoch",
    "state_seq",
    "state_at",
    "state_tie",
    "data_rank",
    "state_rank",
]


@event_type(tag="PgSchemaWork")
class Work(Event):
    """A piece of work."""

    n: int


def query(dsn, text, params=None):
    with psycopg.connect(dsn) as connection:
        return connection.execute(text, params).fetchall()


def run(dsn, text):
    with psycopg.connect(dsn) as connection:
        connection.execute(text)


def version(dsn, table="alien_events"):
    with psycopg.connect(dsn) as connection:
        return schema_version(connection, table)


def indexes(dsn, table="alien_events"):
    found = query(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,))
    return {name for (name,) in found}


def test_first_write_creates_the_table_at_the_current_version(postgres_dsn):
    """The first change creates the table, its columns and indexes, and records the version."""
    assert 0 == version(postgres_dsn)
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=1).emit()
    assert SCHEMA_VERSION == version(postgres_dsn)
    columns = query(
        postgres_dsn,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'alien_events' ORDER BY ordinal_position",
    )
    assert COLUMNS == [name for (name,) in columns]
    assert {
        "alien_events_pkey",
        "alien_events_root_id_idx",
        "alien_events_parent_id_idx",
        "alien_events_recent_roots_idx",
    } == indexes(postgres_dsn)
    assert [("PgSchemaWork",)] == query(postgres_dsn, "SELECT type FROM alien_events")


def test_ensuring_the_schema_again_changes_nothing(postgres_dsn):
    """ensure_schema on a current table keeps its rows, its version and its single version row."""
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=1).emit()
    with psycopg.connect(postgres_dsn) as connection:
        assert SCHEMA_VERSION == ensure_schema(connection)
        assert SCHEMA_VERSION == ensure_schema(connection)
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=2).emit()
    assert [(2,)] == query(postgres_dsn, "SELECT count(*) FROM alien_events")
    assert [("alien_events", SCHEMA_VERSION)] == query(
        postgres_dsn, "SELECT table_name, version FROM alien_events_schema"
    )


def test_each_table_has_its_own_version(postgres_dsn):
    """Two tables in one database are created and versioned independently."""
    for table in ("first_events", "second_events"):
        with PostgresEventHandler(postgres_dsn, table=table) as handler, EventBus([handler]):
            Work(n=1).emit()
    assert [("first_events", SCHEMA_VERSION), ("second_events", SCHEMA_VERSION)] == query(
        postgres_dsn, "SELECT table_name, version FROM alien_events_schema ORDER BY 1"
    )


def test_reading_never_creates_the_schema(postgres_dsn):
    """load_tree on an empty database gives an empty tree and creates no table."""
    assert 0 == len(load_tree(postgres_dsn))
    assert [] == query(postgres_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")


def test_concurrent_first_use_from_threads(postgres_dsn):
    """Eight handlers starting at once on an empty database create the schema once, no errors."""
    barrier = threading.Barrier(8)
    errors = []

    def first_use(n):
        try:
            with PostgresEventHandler(postgres_dsn, table="raced") as handler:
                barrier.wait(timeout=BOUND)
                EventBus([handler]).run(lambda: Work(n=n).emit())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == errors
    assert [(8,)] == query(postgres_dsn, "SELECT count(*) FROM raced")
    assert SCHEMA_VERSION == version(postgres_dsn, "raced")


WRITER = textwrap.dedent(
    """
    import sys
    from alien_events_api import Event, event_type
    from alien_events_postgres import PostgresEventHandler
    from alien_events_sdk import EventBus

    @event_type(tag="PgSchemaChildWork")
    class Work(Event):
        n: int

    handler = PostgresEventHandler(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # all processes start writing at once
    with handler, EventBus([handler]):
        for n in range(5):
            Work(n=n).emit()
    """
)


def test_concurrent_first_use_from_processes(postgres_dsn):
    """Four processes writing their first changes at the same moment all succeed."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert "ready\n" == child.stdout.readline()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=BOUND) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert [0, 0, 0, 0] == [child.returncode for child in children], results
    assert [(20,)] == query(postgres_dsn, "SELECT count(*) FROM alien_events")
    assert SCHEMA_VERSION == version(postgres_dsn)


def test_a_newer_schema_is_refused_with_a_clear_error(postgres_dsn):
    """A table at a version this package does not know fails writes and reads, saying so."""
    with psycopg.connect(postgres_dsn) as connection:
        ensure_schema(connection)
        connection.execute("UPDATE alien_events_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with (
        PostgresEventHandler(postgres_dsn) as handler,
        EventBus([handler]),
        pytest.raises(EventHandlerError, match="upgrade alien-events-postgres") as caught,
    ):
        Work(n=1).emit()
    assert isinstance(caught.value.errors[0], SchemaVersionError)
    assert (SCHEMA_VERSION + 1, SCHEMA_VERSION) == (
        caught.value.errors[0].found,
        caught.value.errors[0].known,
    )
    with pytest.raises(SchemaVersionError):
        load_tree(postgres_dsn)
    assert [(0,)] == query(postgres_dsn, "SELECT count(*) FROM alien_events")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_failing_migration_is_rolled_back_whole(postgres_dsn, kind):
    """A migration that fails (the table name taken) leaves nothing behind; a later write retries it."""
    run(postgres_dsn, "CREATE TABLE alien_events (note text)")
    run(postgres_dsn, "INSERT INTO alien_events VALUES ('not ours')")

    async def emit_async(handler):
        async with EventBus([handler]):
            await Work(n=1).aemit()

    def emit(handler):
        if kind == "async":
            asyncio.run(emit_async(handler))
            return
        with EventBus([handler]):
            Work(n=1).emit()

    handler_class = AsyncPostgresEventHandler if kind == "async" else PostgresEventHandler
    handler = handler_class(postgres_dsn)
    with pytest.raises(EventHandlerError, match='relation "alien_events" already exists') as caught:
        emit(handler)
    assert isinstance(caught.value.errors[0], PostgresWriteError)
    assert [(None,)] == query(postgres_dsn, "SELECT to_regclass('alien_events_schema')")
    assert [("not ours",)] == query(postgres_dsn, "SELECT note FROM alien_events")
    run(postgres_dsn, "ALTER TABLE alien_events RENAME TO not_ours")
    emit(handler)  # the same handler migrates on its next change
    handler.close()
    assert SCHEMA_VERSION == version(postgres_dsn)
    assert [(1,)] == query(postgres_dsn, "SELECT count(*) FROM alien_events")


def test_an_older_schema_is_migrated_and_keeps_its_rows(postgres_dsn):
    """A table at version 1 (with rows) is brought to the current version by the next handler."""
    with psycopg.connect(postgres_dsn) as connection:
        assert 1 == ensure_schema(connection, target=1)
    assert {"alien_events_pkey", "alien_events_root_id_idx"} == indexes(postgres_dsn)
    assert 1 == version(postgres_dsn)
    query(
        postgres_dsn,
        "INSERT INTO alien_events (id, updated_at) VALUES ('written-at-v1', now()) RETURNING id",
    )
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
        Work(n=1).emit()
    assert SCHEMA_VERSION == version(postgres_dsn)
    assert "alien_events_parent_id_idx" in indexes(postgres_dsn)
    assert [(2,)] == query(postgres_dsn, "SELECT count(*) FROM alien_events")


AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def stored_at_v2(event_id, data_change, state_change):
    """A row as version 2 stored it, its data and its state set by these changes (seq 2, at AT)."""
    error = state_change.error
    return {
        "id": event_id,
        "created_at": AT,
        "updated_at": AT,
        "data": Jsonb({"type": "PgSchemaWork", "n": 1}),
        "state": EventState.FAILED.value if error else EventState.SUCCESS.value,
        "error": None if error is None else Jsonb({"code": error.code, "message": error.message}),
        **{f"data_{k}": v for k, v in (("epoch", 0), ("seq", 2), ("at", AT))},
        **{f"state_{k}": v for k, v in (("epoch", 0), ("seq", 2), ("at", AT))},
        "data_tie": repr(data_change),
        "state_tie": repr(state_change),
    }


def test_a_version_2_table_gets_its_tie_ranks_and_function(postgres_dsn):
    """Migrating from v2 ranks stored CANCELLED endings 0 (data too for a Created's), others 1."""
    cancelled = AlienError(code="CANCELLED", message="cancelled (evicted)")
    created = Created(id="x", created_at=AT, event=Work(n=1), seq=2, state=EventState.STARTED)
    created_cancelled = created.replace(state=EventState.FAILED, error=cancelled)
    ended = StateChanged(id="x", updated_at=AT, new_state=EventState.SUCCESS, seq=2)
    ended_cancelled = ended.replace(new_state=EventState.FAILED, error=cancelled)
    rows = [
        stored_at_v2("ended-cancelled", created, ended_cancelled),
        stored_at_v2("created-cancelled", created_cancelled, created_cancelled),
        stored_at_v2("data-from-a-cancelled-created", created_cancelled, ended),
        stored_at_v2("plain", created, ended),
    ]
    with psycopg.connect(postgres_dsn) as connection:
        assert 2 == ensure_schema(connection, target=2)
        for row in rows:
            connection.execute(
                sql.SQL("INSERT INTO alien_events ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                ),
                [*row.values()],
            )
        assert SCHEMA_VERSION == ensure_schema(connection)
    assert [
        ("created-cancelled", 0, 0),
        ("data-from-a-cancelled-created", 0, 1),
        ("ended-cancelled", 1, 0),
        ("plain", 1, 1),
    ] == query(postgres_dsn, "SELECT id, data_rank, state_rank FROM alien_events ORDER BY id")
    late_success = ended.replace(id="ended-cancelled", updated_at=AT - dt.timedelta(seconds=1))
    with PostgresEventHandler(postgres_dsn) as handler:
        handler.on_event_change(late_success)  # same version, earlier: wins over the CANCELLED
    assert [("success",)] == query(
        postgres_dsn, "SELECT state FROM alien_events WHERE id = 'ended-cancelled'"
    )


def test_the_longest_table_name_gets_its_own_upsert_function(postgres_dsn):
    """A 40-character table name still fits its function's name (63-byte limit) and takes writes."""
    table = "t" * 40
    with PostgresEventHandler(postgres_dsn, table=table) as handler, EventBus([handler]):
        Work(n=1).emit()
    name = f"{table}_upsert_change"
    assert [(name,)] == query(
        postgres_dsn, "SELECT proname FROM pg_proc WHERE proname = %s", (name,)
    )
    assert 1 == len(load_tree(postgres_dsn, table=table))
