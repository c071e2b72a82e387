"""
Handlers that ship with the SDK: one that does nothing, one that records every change.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alien_events_api import EventChange


@typing.final
class NoOpEventHandler:
    """
    Takes every change and does nothing (for tests and benchmarks).
    """

    __slots__ = ()

    def on_event_change(self, change: EventChange) -> None:
        """
        Ignore the change.
        """


@typing.final
class RecordingHandler:
    """
    Keeps every change it receives, in delivery order; safe to share between threads.
    """

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: list[EventChange] = []

    def on_event_change(self, change: EventChange) -> None:
        """
        Record the change.
        """
        self.changes.append(change)

    def snapshot(self) -> list[EventChange]:
        """
        Return a copy of the changes recorded so far.
        """
        return list(self.changes)  # list() of a list is atomic under the GIL

    def clear(self) -> None:
        """
        Forget every change recorded so far.
        """
        self.changes.clear()

    def __len__(self) -> int:
        return len(self.changes)
