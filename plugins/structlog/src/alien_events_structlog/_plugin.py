"""
The plugin entry point: the ``structlog`` handler factory, found through the ``alien_events`` group.
"""

from __future__ import annotations

from alien_events_sdk import HandlerFactory, Option, hookimpl
from alien_events_structlog._handler import StructlogHandler


@hookimpl
def alien_events_handler_factories() -> list[HandlerFactory]:
    """Offer the ``structlog`` handler."""
    return [
        HandlerFactory(
            name="structlog",
            create=StructlogHandler,
            options={
                "logger_name": Option(str, default="alien_events", help="the structlog logger"),
            },
            description="every change as a structlog log entry",
        )
    ]
