"""
``EventTree``: folds a stream of changes into the current tree of events, whatever the order.

The fold is order-insensitive and idempotent, so any permutation of the same changes, with
any duplicates, gives the same tree:

- ``Created`` fills the fixed fields (parent, creation time) once; if copies disagree the
  earliest creation time and the smallest parent id win, so the result does not depend on
  which copy came first.
- The event's data and its state are versioned separately by ``(epoch, seq)``, the change's
  ``version``: an ``Updated`` replaces the data only if its version is higher than the data's,
  a ``StateChanged`` replaces the state only if its version is higher than the state's
  (``Created`` counts for both). ``epoch`` is 0 unless a durable program raised it (a retry, a
  hand-over to another process), so a change of a later epoch wins whatever its ``seq``.
  Two different changes with the same version (a re-execution that kept its epoch) are
  ordered so the winner is the same in every order: a ``CANCELLED`` ending loses (a process
  interrupted mid-scope is not an outcome; its re-execution's ending at the same version is),
  then the later time wins, then the larger text (``repr``).
- A change without ``seq`` (from a producer that does not send it) is applied in arrival order.
- A child that arrives before its parent is kept as an orphan and attached when the parent
  arrives; changes for an event whose ``Created`` has not arrived are kept until it does.
"""

from __future__ import annotations

import collections
import time
import typing
from typing import Any

from alien_events_api import (
    AlienError,
    Created,
    Event,
    EventChange,
    EventState,
    PushProgress,
    StateChanged,
    Updated,
)
from alien_events_api._time import from_micros

if typing.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

_NO_VERSION: tuple[Any, ...] = (-1,)
_ARRIVAL = float("inf")
_DEFAULT_TOMBSTONES = 100_000


def _version(seq: int | None, change: EventChange) -> tuple[Any, ...]:
    """Order of changes to one field: epoch, seq; then an interruption loses, later time wins."""
    if seq is None:
        return (_ARRIVAL,)
    return (change.epoch, seq, not _is_interruption(change), change.timestamp_micros, change)


def _is_interruption(change: EventChange) -> bool:
    """Whether the change ends the event as ``CANCELLED`` (a scope cut short, not an outcome)."""
    if change.__class__ is StateChanged or change.__class__ is Created:
        error = change.error
    else:
        return False
    return error is not None and error.is_cancellation


def _later(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    if new[0] == _ARRIVAL:
        return True
    if len(old) == 1:
        return bool(new[0] > old[0])
    if new[:4] != old[:4]:
        return new[:4] > old[:4]
    if new[4] == old[4]:
        return False
    # Same version, same time, different content: any fixed order will do; repr covers all.
    return repr(new[4]) > repr(old[4])


@typing.final
class EventNode:
    """
    One event in the tree: its fixed fields, its latest data and state, and its children.
    """

    __slots__ = (
        "_children",
        "_created",
        "_created_micros",
        "_data_micros",
        "_data_version",
        "_error",
        "_event",
        "_id",
        "_parent_id",
        "_state",
        "_state_version",
        "_updated_micros",
        "_version",
    )

    def __init__(self, event_id: str) -> None:
        self._id = event_id
        self._parent_id: str | None = None
        self._created = False
        self._created_micros = 0
        self._updated_micros = 0
        self._event: Event | None = None
        self._state = EventState.NONE
        self._error: AlienError | None = None
        self._version: tuple[int, int] = (0, -1)
        self._data_version: tuple[Any, ...] = _NO_VERSION
        self._data_micros = 0
        self._state_version: tuple[Any, ...] = _NO_VERSION
        self._children: dict[str, EventNode] = {}

    @property
    def id(self) -> str:
        """The event's id."""
        return self._id

    @property
    def parent_id(self) -> str | None:
        """The parent's id, or ``None`` for a root."""
        return self._parent_id

    @property
    def event(self) -> Event:
        """The event's latest data."""
        return typing.cast("Event", self._event)

    @property
    def state(self) -> EventState:
        """The event's latest state."""
        return self._state

    @property
    def error(self) -> AlienError | None:
        """Why the event failed, when its state is ``FAILED``."""
        return self._error

    @property
    def created_at(self) -> datetime:
        """When the event was created (aware, UTC)."""
        return from_micros(self._created_micros)

    @property
    def updated_at(self) -> datetime:
        """When the latest change to the event happened (aware, UTC)."""
        return from_micros(self._updated_micros)

    @property
    def seq(self) -> int:
        """The ``seq`` of the highest version seen for this event (0 after ``Created`` alone)."""
        return self._version[1]

    @property
    def epoch(self) -> int:
        """The highest ``epoch`` seen for this event (0 unless a durable program raised it)."""
        return self._version[0]

    @property
    def version(self) -> tuple[int, int]:
        """The highest ``(epoch, seq)`` seen for this event."""
        return self._version

    @property
    def children(self) -> list[EventNode]:
        """The children, ordered by creation time, ties broken by id."""
        return sorted(self._children.values(), key=_creation_order)

    @property
    def is_finished(self) -> bool:
        """Whether the event ended (success or failed)."""
        return self._state.is_terminal

    @property
    def is_settled(self) -> bool:
        """Whether nothing more is expected of it: it ended, or it is a plain event (``NONE``)."""
        return self._state is not EventState.STARTED

    def walk(self) -> Iterator[EventNode]:
        """Yield this node and every descendant, depth first, children in order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def descendant_counts(self) -> dict[EventState, int]:
        """Count the descendants (not this node) by state."""
        counts = dict.fromkeys(EventState, 0)
        for node in self.walk():
            if node is not self:
                counts[node._state] += 1
        return counts

    def latest_progress(self) -> PushProgress | None:
        """Return the progress most recently reported in this subtree (a ``progress`` field)."""
        best: tuple[int, PushProgress] | None = None
        for node in self.walk():
            progress = getattr(node._event, "progress", None)
            if isinstance(progress, PushProgress) and (best is None or node._data_micros > best[0]):
                best = (node._data_micros, progress)
        return None if best is None else best[1]

    def elapsed(self, now: datetime | None = None) -> float:
        """
        Seconds the event has run: until its end if finished, else until ``now`` (default: now).
        """
        if self._state.is_terminal:
            end = self._updated_micros
        elif now is None:
            end = time.time_ns() // 1000
        else:
            end = int(now.timestamp() * 1_000_000)
        return max(0, end - self._created_micros) / 1_000_000

    def to_dict(self) -> dict[str, Any]:
        """Return the subtree as plain data, for comparisons and snapshots."""
        from alien_events_sdk._wire import error_to_dict, event_to_dict  # noqa: PLC0415

        return {
            "id": self._id,
            "parentId": self._parent_id,
            "event": None if self._event is None else event_to_dict(self._event),
            "state": self._state.value,
            "error": None if self._error is None else error_to_dict(self._error),
            "createdAt": self._created_micros,
            "updatedAt": self._updated_micros,
            "seq": self._version[1],
            **({"epoch": self._version[0]} if self._version[0] else {}),
            "children": [child.to_dict() for child in self.children],
        }

    def __repr__(self) -> str:
        name = type(self._event).__qualname__ if self._event is not None else "?"
        return f"<EventNode {self._id} {name} {self._state.value} children={len(self._children)}>"


def _creation_order(node: EventNode) -> tuple[int, str]:
    return (node._created_micros, node._id)


@typing.final
class EventTree:
    """
    The current tree of events, folded from changes in any order (see the module docstring).

    Feed it with ``apply(change)`` or use it as a handler (``EventBus([tree])``). Memory grows
    with the events it holds; ``prune_finished()`` drops finished subtrees.
    """

    def __init__(
        self, changes: Iterable[EventChange] = (), *, max_tombstones: int = _DEFAULT_TOMBSTONES
    ) -> None:
        self._nodes: dict[str, EventNode] = {}
        self._roots: dict[str, EventNode] = {}
        self._orphans: dict[str, set[str]] = {}
        self._pruned: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._max_tombstones = max_tombstones
        self._count = 0
        for change in changes:
            self.apply(change)

    # -- reading ----------------------------------------------------------------------------

    def get(self, event_id: str) -> EventNode | None:
        """Return the node of an event whose ``Created`` has arrived, else ``None``."""
        node = self._nodes.get(event_id)
        return node if node is not None and node._created else None

    def next_epoch(self, event_id: str) -> int:
        """
        Return an epoch higher than any seen for the event: for ``EventHandle.attach(epoch=...)``.

        A process taking over an event from this store's view then wins over every earlier
        owner; 1 for an event with no changes here (its creator used epoch 0).
        """
        node = self._nodes.get(event_id)
        return (0 if node is None else node._version[0]) + 1

    @property
    def roots(self) -> list[EventNode]:
        """The root events (no parent), ordered by creation time, ties broken by id."""
        return sorted(self._roots.values(), key=_creation_order)

    @property
    def orphans(self) -> list[EventNode]:
        """Events whose parent has not arrived yet, ordered by creation time."""
        return sorted(
            (
                node
                for ids in self._orphans.values()
                for node in (self._nodes[i] for i in ids)
                if node._created
            ),
            key=_creation_order,
        )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[EventNode]:
        for root in self.roots:
            yield from root.walk()

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self.get(event_id) is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the whole tree as plain data: roots and orphans, each with their subtrees."""
        return {
            "roots": [root.to_dict() for root in self.roots],
            "orphans": [node.to_dict() for node in self.orphans],
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventTree):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- folding ----------------------------------------------------------------------------

    def on_event_change(self, change: EventChange) -> None:
        """Apply a change (so the tree can be a bus handler)."""
        self.apply(change)

    def apply(self, change: EventChange) -> None:
        """Fold one change into the tree (any order, duplicates allowed)."""
        if not isinstance(change, Created | Updated | StateChanged):
            msg = f"apply() takes a change, got {type(change).__name__}"
            raise TypeError(msg)
        event_id = change.id
        if event_id in self._pruned:
            return
        if isinstance(change, Created) and change.parent_id in self._pruned:
            self._tombstone(event_id)  # a late child of a pruned subtree: pruned with it
            self._nodes.pop(event_id, None)
            return
        node = self._nodes.get(event_id)
        if node is None:
            node = self._nodes[event_id] = EventNode(event_id)
        if isinstance(change, Created):
            self._apply_created(node, change)
        elif isinstance(change, Updated):
            self._touch(node, change, change.seq)
            version = _version(change.seq, change)
            if _later(version, node._data_version):
                node._data_version, node._event = version, change.event
                node._data_micros = change.timestamp_micros
        else:
            self._touch(node, change, change.seq)
            version = _version(change.seq, change)
            if _later(version, node._state_version):
                node._state_version = version
                node._state, node._error = change.new_state, change.error

    @staticmethod
    def _touch(node: EventNode, change: EventChange, seq: int | None) -> None:
        node._updated_micros = max(node._updated_micros, change.timestamp_micros)
        if seq is not None:
            node._version = max(node._version, (change.epoch, seq))

    def _apply_created(self, node: EventNode, change: Created) -> None:
        micros = change.timestamp_micros
        seq = 0 if change.seq is None else change.seq
        self._touch(node, change, seq)
        version = _version(seq, change)
        if _later(version, node._data_version):
            node._data_version, node._event = version, change.event
            node._data_micros = micros
        if _later(version, node._state_version):
            node._state_version = version
            node._state, node._error = change.state, change.error
        if not node._created:
            node._created = True
            self._count += 1
            node._created_micros = micros
            self._attach(node, change.parent_id)
            for orphan_id in self._orphans.pop(node._id, ()):
                node._children[orphan_id] = self._nodes[orphan_id]
            return
        node._created_micros = min(node._created_micros, micros)
        parent = change.parent_id
        if parent is not None and (node._parent_id is None or parent < node._parent_id):
            self._detach(node)
            self._attach(node, parent)

    def _attach(self, node: EventNode, parent_id: str | None) -> None:
        node._parent_id = parent_id
        if parent_id is None:
            self._roots[node._id] = node
            return
        parent = self._nodes.get(parent_id)
        if parent is not None and parent._created:
            parent._children[node._id] = node
        else:
            self._orphans.setdefault(parent_id, set()).add(node._id)

    def _detach(self, node: EventNode) -> None:
        parent_id = node._parent_id
        if parent_id is None:
            self._roots.pop(node._id, None)
            return
        parent = self._nodes.get(parent_id)
        if parent is not None:
            parent._children.pop(node._id, None)
        waiting = self._orphans.get(parent_id)
        if waiting is not None:
            waiting.discard(node._id)
            if not waiting:
                del self._orphans[parent_id]

    # -- memory -----------------------------------------------------------------------------

    def prune_finished(self) -> int:
        """
        Drop every finished root subtree; return how many events went.

        A subtree is finished when its root ended (success or failed) and no event in it is
        still started (plain ``NONE`` events have no end to wait for). Orphans whose subtree
        is finished go too. Late changes for a dropped event, and late children of it, are
        ignored (ids are remembered, up to ``max_tombstones`` of the most recent), so a
        long-running dashboard stays bounded.
        """
        removed = 0
        for top in [*self._roots.values(), *self.orphans]:
            if top._id not in self._nodes or not top.is_finished:
                continue
            subtree = list(top.walk())
            if all(node.is_settled for node in subtree):
                self._detach(top)
                for node in subtree:
                    del self._nodes[node._id]
                    self._tombstone(node._id)
                    removed += 1
        self._count -= removed
        return removed

    def _tombstone(self, event_id: str) -> None:
        self._pruned[event_id] = None
        while len(self._pruned) > self._max_tombstones:
            self._pruned.popitem(last=False)
