"""
alien-events-postgres: every change upserted into PostgreSQL, and readers that load or follow it.
"""

from __future__ import annotations

import contextlib

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

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("alien_events_postgres._"):
        with contextlib.suppress(AttributeError, TypeError):  # aliases refuse
            _obj.__module__ = __name__
del _name, _obj
