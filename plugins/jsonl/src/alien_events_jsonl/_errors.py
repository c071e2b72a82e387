"""
Exceptions and warnings of ``alien_events_jsonl``.

The tree::

    AlienEventsError                 (alien_events_api)
    └── JsonLinesError
        └── BadLineError             a line that is not a change (also ValueError)

    AlienEventsWarning               (alien_events_api)
    └── BadLineWarning               a corrupt line was skipped (not strict)
"""

from __future__ import annotations

from alien_events_api import AlienEventsError, AlienEventsWarning


class JsonLinesError(AlienEventsError):
    """
    Root of the exceptions that ``alien_events_jsonl`` raises.
    """


class BadLineError(JsonLinesError, ValueError):
    """
    A line of a JSON-lines file is not a change: ``path``, ``line_number`` (from 1), ``reason``.

    ``torn`` is true for a last line with no newline (a writer died mid-line).
    """

    def __init__(self, path: str, line_number: int, reason: str, *, torn: bool = False) -> None:
        self.path = path
        self.line_number = line_number
        self.reason = reason
        self.torn = torn
        what = "torn last line" if torn else "bad line"
        super().__init__(f"{path}:{line_number}: {what}: {reason}")


class BadLineWarning(AlienEventsWarning):
    """
    A corrupt line in the middle of a file was skipped while reading (``strict=False``).
    """
