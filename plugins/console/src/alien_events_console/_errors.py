"""
Warnings of ``alien_events_console`` (it raises nothing of its own once built).

The tree::

    AlienEventsWarning               (alien_events_api)
    └── ConsoleWarning               rendering failed (reported once, the handler carries on),
                                     or a setting in the environment was not understood
"""

from __future__ import annotations

from alien_events_api import AlienEventsWarning


class ConsoleWarning(AlienEventsWarning):
    """
    The console display met a problem it works around: a rendering error, or a bad setting.

    A rendering error is reported once per handler; the handler keeps going and later
    rendering errors are swallowed, so the display never fails the program it shows.
    """
