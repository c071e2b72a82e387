"""
alien-events-structlog: every change as a structlog log entry.
"""

from __future__ import annotations

import contextlib

from alien_events_structlog._handler import ERROR_KEY, EVENT_KEY, StructlogHandler

__all__ = ["ERROR_KEY", "EVENT_KEY", "StructlogHandler"]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("alien_events_structlog._"):
        with contextlib.suppress(AttributeError, TypeError):  # aliases refuse
            _obj.__module__ = __name__
del _name, _obj
