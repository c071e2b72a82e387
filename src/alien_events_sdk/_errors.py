"""
Exceptions of ``alien_events_sdk``.

The tree (the root derives from the API's, so one ``except AlienEventsError`` catches all)::

    AlienEventsError                      (alien_events_api)
    └── SdkError
        └── WireFormatError               malformed wire input (also ValueError)
"""

from __future__ import annotations

from alien_events_api import AlienEventsError


class SdkError(AlienEventsError):
    """
    Root of the exceptions that ``alien_events_sdk`` raises.
    """


class WireFormatError(SdkError, ValueError):
    """
    Wire input could not be read: not JSON, a missing or wrongly typed field, a bad timestamp.

    ``path`` says where (``event.progress.totalLayers``, ``createdAt``, ``<document>``) and
    ``reason`` what was wrong. Nothing half-parsed is ever returned.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
