"""
The plugin entry point: the ``jsonl`` handler factory, found through the ``alien_events`` group.
"""

from __future__ import annotations

import pathlib

from alien_events_jsonl._handler import JsonLinesHandler
from alien_events_sdk import HandlerFactory, Option, hookimpl


@hookimpl
def alien_events_handler_factories() -> list[HandlerFactory]:
    """Offer the ``jsonl`` handler."""
    return [
        HandlerFactory(
            name="jsonl",
            create=JsonLinesHandler,
            options={
                "path": Option(pathlib.Path, required=True, help="the file to append to"),
                "fsync": Option(bool, default=False, help="force each line to disk"),
                "max_bytes": Option(int, default=0, help="rotate past this size (0: never)"),
                "backups": Option(int, default=5, help="rotated files to keep"),
            },
            description="every change as one line of JSON, appended to a file",
        )
    ]
