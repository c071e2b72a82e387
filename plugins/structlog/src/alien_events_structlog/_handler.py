"""
``StructlogHandler``: every change as one structlog entry, without configuring structlog.
"""

from __future__ import annotations

import threading
import typing
from typing import TYPE_CHECKING, Any

import structlog

from alien_events_api import Created, EventState, StateChanged, Updated
from alien_events_sdk import to_dict

if TYPE_CHECKING:
    from alien_events_api import AlienError, Event, EventChange

EVENT_KEY = "alien_event"
"""The key holding the event's fields (its wire form), clear of structlog's ``event``/``level``."""
MAX_REMEMBERED = 10_000
"""How many event types the handler remembers (started or updated events) to name state changes."""
ERROR_KEY = "alien_error"
"""The key holding a failure's error (its wire form)."""


def _tag(event: Event) -> str:
    return typing.cast("str", to_dict(event)["type"])


def _outcome(state: EventState, error: AlienError | None) -> str:
    if state is EventState.FAILED:
        return "failed" + ("" if error is None else f": {error.message}")
    return {
        EventState.NONE: "emitted",
        EventState.STARTED: "started",
        EventState.SUCCESS: "succeeded",
    }[state]


@typing.final
class StructlogHandler:
    """
    Logs each change to ``structlog.get_logger(logger_name)``: ``info``, or ``error`` on failure.

    The entry's message is short and human ("BuildingStack started"); the event's fields are
    under ``alien_event``, and ``event_id``, ``parent_id``, ``state``, ``seq`` (and
    ``alien_error`` for failures) say the rest. It remembers the type of each started (or
    updated) event until it ends, so a state change (which carries no event) still reads
    "BuildingStack succeeded"; at most ``MAX_REMEMBERED`` of them, the oldest forgotten first.
    """

    def __init__(self, logger_name: str = "alien_events") -> None:
        self._logger = structlog.get_logger(logger_name)
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()

    def _remember(self, event_id: str, tag: str) -> None:
        with self._lock:
            self._open.setdefault(event_id, tag)
            if len(self._open) > MAX_REMEMBERED:
                del self._open[next(iter(self._open))]  # the oldest: memory stays bounded

    def on_event_change(self, change: EventChange) -> None:
        """Log the change."""
        if not isinstance(change, Created | Updated | StateChanged):
            msg = f"expected a change, got {type(change).__name__}"
            raise TypeError(msg)
        fields: dict[str, Any] = {"event_id": change.id, "seq": change.seq}
        if isinstance(change, Created):
            tag = _tag(change.event)
            if change.state is EventState.STARTED:
                self._remember(change.id, tag)
            message = f"{tag} {_outcome(change.state, change.error)}"
            state, error = change.state, change.error
            fields.update(parent_id=change.parent_id, **{EVENT_KEY: to_dict(change.event)})
        elif isinstance(change, Updated):
            tag = _tag(change.event)
            self._remember(change.id, tag)
            message = f"{tag} updated"
            state, error = None, None
            fields[EVENT_KEY] = to_dict(change.event)
        else:
            state, error = change.new_state, change.error
            with self._lock:
                known = (
                    self._open.pop(change.id, None)
                    if state.is_terminal
                    else self._open.get(change.id)
                )
            message = f"{known or 'event ' + change.id[:8]} {_outcome(state, error)}"
        if state is not None:
            fields["state"] = state.value
        if error is not None:
            fields[ERROR_KEY] = to_dict(error)
        if state is EventState.FAILED:
            self._logger.error(message, **fields)
        else:
            self._logger.info(message, **fields)
