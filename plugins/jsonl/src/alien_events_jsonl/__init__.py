"""
alien-events-jsonl: every change as one JSON line in a file, and a reader that follows it.
"""

from __future__ import annotations

from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_jsonl._errors import BadLineError, BadLineWarning, JsonLinesError
from alien_events_jsonl._handler import JsonLinesHandler
from alien_events_jsonl._reader import read_changes

__all__ = [
    "BadLineError",
    "BadLineWarning",
    "JsonLinesError",
    "JsonLinesHandler",
    "read_changes",
]

_present_as_public(globals(), __name__, __all__)
