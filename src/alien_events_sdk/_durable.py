"""
Durable execution: ids derived from a scope key, and delivery that may skip replayed changes.

Durable frameworks (Temporal, Restate, Inngest, DBOS) run a program's code again after a
crash or a suspension. For the re-run to describe the same events it must make the same ids
(``DerivedIds``) and the same ``seq`` numbers (handles count their changes as before); its
changes are then duplicates, which stores drop. ``is_replaying`` lets a bus skip delivering
them at all, as an optimisation: what the program observes is the same either way.
"""

from __future__ import annotations

import enum
import itertools
import json
import typing
import uuid
from typing import TYPE_CHECKING

from alien_events_api import UnknownEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from alien_events_api import Event, EventChange
    from alien_events_sdk._dispatch import Dispatcher

ID_SCHEME_VERSION = 1
"""The version of the id derivation; ids of a version never change (see ``DerivedIds``)."""

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"alien-events:derived-ids:v{ID_SCHEME_VERSION}")


def child_key(event: Event) -> str:
    """
    Return the key an event gets among its siblings when the caller gives none: its wire tag.
    """
    if isinstance(event, UnknownEvent):
        return event.tag
    return type(event).__event_tag__ or type(event).__qualname__


@typing.final
class DerivedIds:
    """
    Ids that are a pure function of the scope key, the parent, the child's key and occurrence.

    ``EventBus(handlers, ids=DerivedIds("temporal/default/wf-42/run-1"))``: the n-th child
    with key ``k`` (its type's tag, or the ``key=`` given to ``emit``) under parent ``p`` gets
    ``uuid5(namespace_v1, [scope_key, p, k, n])``. Re-running the same program with the same
    scope key, in any process, makes the same ids. Counters are kept per parent and key, so
    concurrent branches that interleave differently still get the same ids as long as each
    branch is deterministic; siblings made concurrently under one parent with one key need
    caller keys. Two processes with different scope keys never collide, even under one parent.

    One instance serves one execution: its counters grow with the parents it has seen.
    """

    __slots__ = ("_counters", "_scope_key")

    def __init__(self, scope_key: str) -> None:
        if not isinstance(scope_key, str) or not scope_key:
            msg = f"DerivedIds: scope_key must be a non-empty str, got {scope_key!r}"
            raise TypeError(msg)
        self._scope_key = scope_key
        self._counters: dict[tuple[str | None, str], itertools.count[int]] = {}

    @property
    def scope_key(self) -> str:
        """The execution's scope key."""
        return self._scope_key

    def __call__(self, parent_id: str | None, event: Event, key: str | None = None) -> str:
        """Return the id of the next child with this key (default: the event's tag) under parent."""
        name = child_key(event) if key is None else key
        slot = (parent_id, name)
        # dict.setdefault and next() are atomic under the GIL: no lock (Temporal's sandbox
        # forbids creating one at run time).
        counter = self._counters.get(slot) or self._counters.setdefault(slot, itertools.count())
        return self.id_for(parent_id, name, next(counter))

    def id_for(self, parent_id: str | None, key: str, occurrence: int = 0) -> str:
        """
        Return the id the ``occurrence``-th child with ``key`` under ``parent_id`` gets (0 first).

        Pure: another process (a UI, a caller) can compute an execution's ids in advance.
        """
        name = json.dumps([self._scope_key, parent_id, key, occurrence], separators=(",", ":"))
        return str(uuid.uuid5(_NAMESPACE, name))

    def __repr__(self) -> str:
        return f"DerivedIds({self._scope_key!r})"


class ReplayPolicy(enum.Enum):
    """
    What a bus does with changes made while its ``is_replaying`` hook says the code is replaying.
    """

    SKIP_ON_REPLAY = "skip_on_replay"
    """Do not deliver them (the first execution delivered them; stores drop duplicates)."""
    DELIVER_ALWAYS = "deliver_always"
    """Deliver them again: costs writes, but never loses a change whose first delivery failed."""


class ReplayGate:
    """
    Wraps a bus's dispatcher: changes made while ``is_replaying()`` is true are not delivered.
    """

    __slots__ = ("_dispatcher", "_is_replaying")

    def __init__(self, dispatcher: Dispatcher, is_replaying: Callable[[], bool]) -> None:
        self._dispatcher = dispatcher
        self._is_replaying = is_replaying

    def deliver(self, change: EventChange) -> None:
        """Deliver unless replaying."""
        if not self._is_replaying():
            self._dispatcher.deliver(change)

    async def adeliver(self, change: EventChange) -> None:
        """Async twin of ``deliver``."""
        if not self._is_replaying():
            await self._dispatcher.adeliver(change)
