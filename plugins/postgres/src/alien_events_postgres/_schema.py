"""
The table's schema, versioned: the handler creates it on first use and migrates it forward.

``alien_events_schema`` holds one row per events table with its version. Each migration runs
once, in its own transaction, under a transaction-level advisory lock, so concurrent first
writers (threads, processes, machines) wait for each other instead of racing; a database
migrated by a newer version of this package is refused with ``SchemaVersionError``.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from psycopg import sql

from alien_events_postgres._errors import BadIdentifierError, SchemaVersionError
from alien_events_postgres._steps import BEGIN, COMMIT, Query, Rows, Steps, arun_steps, run_steps
from alien_events_postgres._upsert import create_function

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

SCHEMA_TABLE = "alien_events_schema"
SCHEMA_LOCK_KEY = 0x616C69656E5F7363  # "alien_sc": serialises migrations in a database
TABLE_LIMIT = 40  # index and function names add up to 17 bytes; PostgreSQL's stop at 63
CHANNEL_LIMIT = 63
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_identifier(what: str, name: object, limit: int) -> str:
    """Return ``name`` if it is a plain identifier of at most ``limit`` characters, else raise."""
    if not isinstance(name, str) or len(name) > limit or not _IDENTIFIER.fullmatch(name):
        raise BadIdentifierError(what, name, limit)
    return name


def _names(table: str) -> dict[str, sql.Identifier]:
    return {
        "t": sql.Identifier(table),
        "root_idx": sql.Identifier(f"{table}_root_id_idx"),
        "parent_idx": sql.Identifier(f"{table}_parent_id_idx"),
        "recent_idx": sql.Identifier(f"{table}_recent_roots_idx"),
    }


def _v1(table: str) -> list[sql.Composed]:
    """The events table and the index for "the tree under this root"."""
    names = _names(table)
    return [
        sql.SQL(
            """
            CREATE TABLE {t} (
                id text PRIMARY KEY,
                parent_id text,
                root_id text,
                type text GENERATED ALWAYS AS (data ->> 'type') STORED,
                data jsonb,
                state text,
                error jsonb,
                created_at timestamptz,
                updated_at timestamptz NOT NULL,
                epoch bigint,
                seq bigint,
                data_epoch bigint,
                data_seq bigint,
                data_at timestamptz,
                data_tie text,
                state_epoch bigint,
                state_seq bigint,
                state_at timestamptz,
                state_tie text
            )
            """
        ).format(**names),
        sql.SQL("CREATE INDEX {root_idx} ON {t} (root_id)").format(**names),
    ]


def _v2(table: str) -> list[sql.Composed]:
    """Indexes for the children of an event (root fix-up) and for "recent roots"."""
    names = _names(table)
    return [
        sql.SQL("CREATE INDEX {parent_idx} ON {t} (parent_id)").format(**names),
        sql.SQL(
            "CREATE INDEX {recent_idx} ON {t} (created_at DESC) WHERE parent_id IS NULL"
        ).format(**names),
    ]


# The text of a Created whose error is CANCELLED (its data's rank, for rows stored before v3).
_CANCELLED_CREATED = (
    r"^Created\(.*, state=<EventState\.[A-Z_]+: '[a-z_]+'>, error=AlienError\(code='CANCELLED', "
)
_STATE_RANK = "CASE WHEN error ->> 'code' = 'CANCELLED' THEN 0 ELSE 1 END"


def _v3(table: str) -> list[sql.Composed]:
    """Tie ranks (a CANCELLED ending loses ties), filled in for stored rows; the upsert function."""
    names = _names(table)
    return [
        sql.SQL(
            "ALTER TABLE {t} ADD COLUMN data_rank smallint, ADD COLUMN state_rank smallint"
        ).format(**names),
        sql.SQL(
            "UPDATE {t} SET state_rank = CASE WHEN state IS NOT NULL THEN {state_rank} END,"
            " data_rank = CASE WHEN data IS NULL THEN NULL"
            " WHEN data_tie = state_tie THEN {state_rank}"  # one Created set both
            " WHEN data_tie ~ {pattern} THEN 0 ELSE 1 END"
        ).format(state_rank=sql.SQL(_STATE_RANK), pattern=sql.Literal(_CANCELLED_CREATED), **names),
        create_function(table),
    ]


MIGRATIONS: tuple[Callable[[str], list[sql.Composed]], ...] = (_v1, _v2, _v3)
"""The migrations in order: ``MIGRATIONS[n]`` takes a table from version ``n`` to ``n + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this package writes and reads."""

_EXISTS = sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(sql.Literal(SCHEMA_TABLE))
_CREATE = sql.SQL(
    "CREATE TABLE IF NOT EXISTS {} ("
    " table_name text PRIMARY KEY, version integer NOT NULL,"
    " migrated_at timestamptz NOT NULL DEFAULT now())"
).format(sql.Identifier(SCHEMA_TABLE))
_SELECT = sql.SQL("SELECT version FROM {} WHERE table_name = %s").format(
    sql.Identifier(SCHEMA_TABLE)
)
_SELECT_FOR_UPDATE = sql.SQL("SELECT version FROM {} WHERE table_name = %s FOR UPDATE").format(
    sql.Identifier(SCHEMA_TABLE)
)
_SET = sql.SQL(
    "INSERT INTO {} (table_name, version) VALUES (%s, %s) ON CONFLICT (table_name)"
    " DO UPDATE SET version = EXCLUDED.version, migrated_at = now()"
).format(sql.Identifier(SCHEMA_TABLE))
_LOCK = sql.SQL("SELECT pg_advisory_xact_lock(%s)")


def _version(rows: Rows) -> int:
    return int(rows[0][0]) if rows else 0


def _check_known(table: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(table, version, SCHEMA_VERSION)


def version_steps(table: str) -> Steps[int]:
    """Read the table's schema version (0: never created), without creating anything."""
    # In a transaction of its own: on a connection outside autocommit, a bare query would
    # open one that nobody commits, and everything after it would wait for that commit.
    yield BEGIN
    version = 0
    if (yield Query(_EXISTS))[0][0]:
        version = _version((yield Query(_SELECT, (table,))))
    yield COMMIT
    _check_known(table, version)
    return version


def migrate_steps(table: str, target: int = SCHEMA_VERSION) -> Steps[int]:
    """Bring the table to version ``target``, one locked transaction per migration."""
    check_identifier("table", table, TABLE_LIMIT)
    version = yield from version_steps(table)
    while version < target:
        yield BEGIN
        yield Query(_LOCK, (SCHEMA_LOCK_KEY,))
        yield Query(_CREATE)
        version = _version((yield Query(_SELECT_FOR_UPDATE, (table,))))
        _check_known(table, version)
        if version < target:
            for statement in MIGRATIONS[version](table):
                yield Query(statement)
            version += 1
            yield Query(_SET, (table, version))
        yield COMMIT
    return version


def ensure_schema(
    connection: psycopg.Connection[Any], table: str = "alien_events", target: int = SCHEMA_VERSION
) -> int:
    """Create or migrate ``table`` on a sync connection; return its version."""
    return run_steps(connection, migrate_steps(table, target))


async def aensure_schema(
    connection: psycopg.AsyncConnection[Any],
    table: str = "alien_events",
    target: int = SCHEMA_VERSION,
) -> int:
    """Async twin of ``ensure_schema``."""
    return await arun_steps(connection, migrate_steps(table, target))


def schema_version(connection: psycopg.Connection[Any], table: str = "alien_events") -> int:
    """Return ``table``'s schema version on a sync connection (0: never created)."""
    return run_steps(connection, version_steps(table))
