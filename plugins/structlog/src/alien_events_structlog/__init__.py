"""
alien-events-structlog: every change as a structlog log entry.
"""

from __future__ import annotations

from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_structlog._handler import ERROR_KEY, EVENT_KEY, StructlogHandler

__all__ = ["ERROR_KEY", "EVENT_KEY", "StructlogHandler"]

_present_as_public(globals(), __name__, __all__)
