"""
The plugin entry point: the ``console`` handler factory, found through the ``alien_events`` group.
"""

from __future__ import annotations

from alien_events_console._handler import ConsoleHandler
from alien_events_sdk import HandlerFactory, Option, hookimpl


def create_console_handler(mode: str, color: str, width: int) -> ConsoleHandler:
    """Build the handler from the plugin's options (``width`` 0: the terminal's)."""
    if width < 0:
        msg = f"width must be >= 0 (0: the terminal's), got {width}"
        raise ValueError(msg)
    return ConsoleHandler(mode, color=color, width=width or None)


@hookimpl
def alien_events_handler_factories() -> list[HandlerFactory]:
    """Offer the ``console`` handler."""
    return [
        HandlerFactory(
            name="console",
            create=create_console_handler,
            options={
                "mode": Option(str, default="auto", help="auto, live, plain or quiet"),
                "color": Option(str, default="auto", help="auto, always or never"),
                "width": Option(int, default=0, help="columns to draw in (0: the terminal's)"),
            },
            description="the events for people: a live tree on a terminal, log lines in CI",
        )
    ]
