"""
alien-events-jsonl: every change as one JSON line in a file, and a reader that follows it.
"""

from __future__ import annotations

import contextlib

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

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("alien_events_jsonl._"):
        with contextlib.suppress(AttributeError, TypeError):  # aliases refuse
            _obj.__module__ = __name__
del _name, _obj
