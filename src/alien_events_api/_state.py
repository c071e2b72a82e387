"""
The lifecycle state of an event.
"""

from __future__ import annotations

import enum


class EventState(enum.StrEnum):
    """
    Where an event is in its lifecycle: ``NONE`` for plain events, then started, success or failed.

    A failed state's error travels next to the state (``StateChanged.error``), not inside it.
    """

    NONE = "none"
    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """
        Whether the state ends a lifecycle (success or failed).
        """
        return self is EventState.SUCCESS or self is EventState.FAILED

    def __str__(self) -> str:
        return self.value
