"""
Test helpers: capture the events a piece of code emits, and compare them readably.

``capture_events()`` runs a block with a fresh bus that records every change and folds it
into an ``EventTree``; the pytest fixture ``alien_events`` (installed with the SDK) does the
same around a test. Ids are random, so comparisons use ``normalised()`` (stable ids
``event-1``, ``event-2``, ... in order of first appearance) or ``shape()`` (the tree by event
type and state).
"""

from __future__ import annotations

import threading
import typing
from typing import Any, TypeVar

from alien_events_api import (
    Created,
    Event,
    EventChange,
    EventState,
    StateChanged,
    Updated,
)
from alien_events_sdk._bus import EventBus, set_default_bus
from alien_events_sdk._tree import EventNode, EventTree
from alien_events_sdk._wire import error_to_dict, event_to_dict

if typing.TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

E = TypeVar("E", bound=Event)

__all__ = ["CapturedEvents", "capture_events", "normalise", "shape", "stable_names"]


def _tag(event: Event) -> str:
    return typing.cast("str", event_to_dict(event)["type"])


def normalise(changes: Iterable[EventChange]) -> list[dict[str, Any]]:
    """
    Return changes as plain dicts with stable ids (``event-1``, ...) and no timestamps.

    Ids are numbered in order of first appearance; a ``Created`` numbers its own id before
    its parent's, as the Rust snapshot tests do.
    """
    changes = list(changes)
    names = stable_names(changes)

    def name(event_id: str | None) -> str | None:
        return None if event_id is None else names[event_id]

    out: list[dict[str, Any]] = []
    for change in changes:
        if isinstance(change, Created):
            own = name(change.id)
            out.append(
                {
                    "type": "created",
                    "id": own,
                    "parentId": name(change.parent_id),
                    "event": event_to_dict(change.event),
                    "state": change.state.value,
                    **_error(change.error),
                }
            )
        elif isinstance(change, Updated):
            out.append(
                {"type": "updated", "id": name(change.id), "event": event_to_dict(change.event)}
            )
        elif isinstance(change, StateChanged):
            out.append(
                {
                    "type": "stateChanged",
                    "id": name(change.id),
                    "newState": change.new_state.value,
                    **_error(change.error),
                }
            )
    return out


def stable_names(changes: Iterable[EventChange]) -> dict[str, str]:
    """
    Name every id in the changes ``event-1``, ``event-2``, ... in order of first appearance.

    A ``Created`` names its own id before its parent's, as the Rust snapshot tests do.
    """
    names: dict[str, str] = {}
    for change in changes:
        ids = [change.id, change.parent_id] if isinstance(change, Created) else [change.id]
        for event_id in ids:
            if event_id is not None and event_id not in names:
                names[event_id] = f"event-{len(names) + 1}"
    return names


def _tops(tree: EventTree) -> list[EventNode]:
    """The roots, then the orphans (events whose parent is outside what was captured)."""
    return [*tree.roots, *tree.orphans]


def _error(error: Any) -> dict[str, Any]:
    return {} if error is None else {"error": error_to_dict(error)}


def shape(tree: EventTree) -> list[tuple[str, str, list[Any]]]:
    """
    Return the tree as nested ``(event type, state, [children...])`` tuples.

    Roots come first, then orphans: events whose parent is not in the tree (for a capture
    opened inside a scope of another bus, its top events).
    """

    def node_shape(node: EventNode) -> tuple[str, str, list[Any]]:
        return (_tag(node.event), node.state.value, [node_shape(c) for c in node.children])

    return [node_shape(top) for top in _tops(tree)]


@typing.final
class CapturedEvents:
    """
    What a capture saw: ``changes`` in delivery order, and the ``tree`` they fold into.
    """

    def __init__(self) -> None:
        self.changes: list[EventChange] = []
        self.tree = EventTree()
        self._lock = threading.Lock()
        self.bus = EventBus([self.on_event_change])

    def on_event_change(self, change: EventChange) -> None:
        """Record a change and fold it into the tree (safe from many threads)."""
        with self._lock:
            self.changes.append(change)
            self.tree.apply(change)

    def normalised(self) -> list[dict[str, Any]]:
        """The changes with stable ids and no timestamps (see ``normalise``)."""
        return normalise(self.changes)

    def shape(self) -> list[tuple[str, str, list[Any]]]:
        """The tree by event type and state (see ``shape``)."""
        return shape(self.tree)

    def events(self, of_type: type[E] | None = None) -> list[Any]:
        """The events created, in order; only those of ``of_type`` if given."""
        created = [c.event for c in self.changes if isinstance(c, Created)]
        if of_type is None:
            return created
        return [e for e in created if isinstance(e, of_type)]

    def states(self) -> dict[str, EventState]:
        """The final state of each event, by stable id (``event-1``, ...)."""
        names = stable_names(self.changes)
        return {
            names.get(node.id, node.id): node.state
            for top in _tops(self.tree)
            for node in top.walk()
        }

    def clear(self) -> None:
        """Forget everything captured so far."""
        with self._lock:
            self.changes.clear()
            self.tree = EventTree()


@typing.final
class capture_events:  # noqa: N801  (used like a function: `with capture_events() as captured:`)
    """
    Run a block with a fresh recording bus: ``with capture_events() as captured:``, or async.

    The bus is current in the block and, unless ``process_default=False``, also the process
    default for its duration, so plain threads started inside are captured too.
    """

    def __init__(self, *, process_default: bool = True) -> None:
        self._process_default = process_default
        self._captured = CapturedEvents()
        self._previous: EventBus | None = None

    def __enter__(self) -> CapturedEvents:
        self._captured.bus.__enter__()
        if self._process_default:
            self._previous = set_default_bus(self._captured.bus)
        return self._captured

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process_default:
            set_default_bus(self._previous)
        self._captured.bus.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> CapturedEvents:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
