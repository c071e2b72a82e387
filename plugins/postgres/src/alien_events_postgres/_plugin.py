"""
The plugin entry point: the ``postgres`` handler factory, found through the ``alien_events`` group.
"""

from __future__ import annotations

from alien_events_postgres._handler import PostgresEventHandler
from alien_events_sdk import HandlerFactory, Option, PluginOptionError, hookimpl

PLUGIN = "postgres"


def create_handler(
    dsn: str | None, table: str, retries: int, backoff: float, channel: str
) -> PostgresEventHandler:
    """Build the handler from the options; a DSN is required (a pool can only be given in code)."""
    if not dsn:
        raise PluginOptionError(
            PLUGIN,
            "dsn",
            "required: a PostgreSQL connection string such as postgresql://user@host/db "
            "(to use a pool or a connection of yours, build PostgresEventHandler in code)",
        )
    return PostgresEventHandler(dsn, table=table, retries=retries, backoff=backoff, channel=channel)


@hookimpl
def alien_events_handler_factories() -> list[HandlerFactory]:
    """Offer the ``postgres`` handler."""
    return [
        HandlerFactory(
            name=PLUGIN,
            create=create_handler,
            options={
                "dsn": Option(str, help="the PostgreSQL connection string (required)"),
                "table": Option(str, default="alien_events", help="the table to upsert into"),
                "retries": Option(int, default=3, help="retries after a connection error"),
                "backoff": Option(float, default=0.05, help="seconds before the first retry"),
                "channel": Option(str, default="alien_events", help="the NOTIFY channel"),
            },
            description="every change upserted into a PostgreSQL table before the emit returns",
        )
    ]
