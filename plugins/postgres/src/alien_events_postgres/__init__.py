"""
alien-events-postgres: every change upserted into PostgreSQL, and readers that load or follow it.
"""

from __future__ import annotations

from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_postgres._async_handler import AsyncPostgresEventHandler
from alien_events_postgres._errors import (
    BadIdentifierError,
    PostgresEventsError,
    PostgresWriteError,
    SchemaVersionError,
)
from alien_events_postgres._handler import PostgresEventHandler
from alien_events_postgres._reader import follow, load_changes, load_tree
from alien_events_postgres._schema import SCHEMA_VERSION, ensure_schema, schema_version

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresEventHandler",
    "BadIdentifierError",
    "PostgresEventHandler",
    "PostgresEventsError",
    "PostgresWriteError",
    "SchemaVersionError",
    "ensure_schema",
    "follow",
    "load_changes",
    "load_tree",
    "schema_version",
]

_present_as_public(globals(), __name__, __all__)
