"""
alien-events-console: the events shown to people, as a live tree on a terminal or as log lines.

``ConsoleHandler`` is the handler (also the ``console`` plugin: ``ALIEN_EVENTS_HANDLERS=console``);
``render_frame`` is its live picture as a pure function; ``describe`` and ``progress_of`` give
the text and progress of any event, with ``__alien_text__`` / ``__alien_progress__`` hooks for
your own types.
"""

from __future__ import annotations

from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_console._describe import (
    DescribesItself,
    ReportsProgress,
    describe,
    progress_of,
)
from alien_events_console._environment import choose_color, choose_mode
from alien_events_console._errors import ConsoleWarning
from alien_events_console._frame import Frame, render_frame
from alien_events_console._handler import ConsoleHandler

__all__ = [
    "ConsoleHandler",
    "ConsoleWarning",
    "DescribesItself",
    "Frame",
    "ReportsProgress",
    "choose_color",
    "choose_mode",
    "describe",
    "progress_of",
    "render_frame",
]

_present_as_public(globals(), __name__, __all__)
