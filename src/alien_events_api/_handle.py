"""
``EventHandle``: what ``emit`` returns, to update, complete or fail the event, and to parent others.
"""

from __future__ import annotations

import itertools
import typing
from typing import TYPE_CHECKING, TypeVar, overload

from alien_events_api._context import resolve_bus
from alien_events_api._state import EventState
from alien_events_api._validation import is_count

if TYPE_CHECKING:
    from collections.abc import Callable

    from alien_events_api._alien_error import AlienError
    from alien_events_api._bus import AbstractEventBus
    from alien_events_api._event import Event
    from alien_events_api._scope import ParentScope

R = TypeVar("R")
_new = object.__new__


def _error_from(error: AlienError | BaseException) -> AlienError:
    from alien_events_api._alien_error import AlienError  # noqa: PLC0415  (import cycle)

    if isinstance(error, AlienError):
        return error
    if isinstance(error, BaseException):
        return AlienError.from_exception(error)
    msg = f"fail() takes an AlienError or an exception, got {type(error).__name__}"
    raise TypeError(msg)


def _check_event(event: object) -> None:
    if not isinstance(event, _EventBase):
        msg = (
            f"update() takes an event (an Event subclass such as AlienEvent.BuildingStack), "
            f"got {type(event).__name__}"
        )
        raise TypeError(msg)


def _check_count(name: str, value: object) -> None:
    if not is_count(value):
        msg = f"EventHandle.{name}: expected an int >= 0, got {value!r}"
        raise TypeError(msg)


_EventBase: type = object
"""``Event``, once ``_event`` has defined it (the two modules import each other)."""


def set_event_base(cls: type) -> None:
    """Record the ``Event`` class, for the checks in ``update`` (called once, by ``_event``)."""
    global _EventBase  # noqa: PLW0603  (set once at import; a module global is the fastest lookup)
    _EventBase = cls


@typing.final
class EventHandle:
    """
    A live event: ``update`` its data, ``complete`` or ``fail`` it, or make it the parent of others.

    A handle remembers the bus that created it; a handle built from an id alone (for example
    one read back from a store, see ``attach``) uses the bus of the current context. Its changes
    carry its ``epoch`` and the next ``seq``. Operations on the no-op handle (``is_noop``)
    return at once and do nothing.
    """

    __slots__ = ("_bus", "_epoch", "_id", "_parent_id", "_seq")

    _id: str
    _parent_id: str | None
    _bus: AbstractEventBus | None
    _seq: itertools.count[int] | None  # None marks the no-op handle
    _epoch: int

    def __init__(
        self,
        id: str,
        parent_id: str | None = None,
        *,
        bus: AbstractEventBus | None = None,
        next_seq: int = 1,
        epoch: int = 0,
    ) -> None:
        if not isinstance(id, str) or not id:
            msg = f"EventHandle.id: expected a non-empty str, got {id!r}"
            raise TypeError(msg)
        if parent_id is not None and not isinstance(parent_id, str):
            msg = f"EventHandle.parent_id: expected str or None, got {parent_id!r}"
            raise TypeError(msg)
        _check_count("next_seq", next_seq)
        _check_count("epoch", epoch)
        self._id = id
        self._parent_id = parent_id
        self._bus = bus
        self._seq = itertools.count(next_seq)
        self._epoch = epoch

    @classmethod
    def attach(
        cls,
        id: str,
        parent_id: str | None = None,
        *,
        epoch: int = 1,
        next_seq: int = 1,
        bus: AbstractEventBus | None = None,
    ) -> EventHandle:
        """
        Take over an event another process created, from its id: no new ``Created`` is sent.

        Children emitted under the handle get ``id`` as their parent; ``update``, ``complete``
        and ``fail`` send changes numbered ``(epoch, next_seq)``, ``(epoch, next_seq + 1)``...
        Stores keep the change with the highest ``(epoch, seq)``, so each owner after the
        creator (epoch 0) must use a higher epoch than the one before: the default 1 suits
        one hand-over; for more, take the attempt number or ``EventTree.next_epoch(id)``.
        """
        return cls(id, parent_id, bus=bus, next_seq=next_seq, epoch=epoch)

    @classmethod
    def noop(cls) -> EventHandle:
        """
        Return the no-op handle (id ``"noop"``): what ``emit`` gives when no bus is reachable.
        """
        return NOOP_HANDLE

    @property
    def id(self) -> str:
        """
        The event's id.
        """
        return self._id

    @property
    def parent_id(self) -> str | None:
        """
        The id of the event's parent, or ``None`` for a root.
        """
        return None if self._seq is None else self._parent_id

    @property
    def epoch(self) -> int:
        """
        The epoch this handle's changes carry (0 for the creator; raised by ``attach``).
        """
        return self._epoch

    @property
    def is_noop(self) -> bool:
        """
        Whether this is a no-op handle (no bus was reachable when the event was emitted).
        """
        return self._seq is None

    @property
    def children_parent_id(self) -> str | None:
        """
        The parent id of events emitted under this handle (for a no-op one, the enclosing parent).
        """
        return self._parent_id if self._seq is None else self._id

    def next_seq(self) -> int:
        """
        Take the ``seq`` for this event's next change (buses call this; each call returns one more).
        """
        if self._seq is None:
            msg = "the no-op handle has no changes"
            raise RuntimeError(msg)
        return next(self._seq)

    def update(self, event: Event) -> None:
        """
        Replace the event's data (an ``Updated`` change), for live progress.
        """
        if not isinstance(event, _EventBase):
            _check_event(event)
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            bus.update_event(self, event)

    async def aupdate(self, event: Event) -> None:
        """
        Async twin of ``update``.
        """
        _check_event(event)
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            await bus.aupdate_event(self, event)

    def complete(self) -> None:
        """
        Mark the event successful (a ``StateChanged`` change to ``SUCCESS``).
        """
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            bus.change_state(self, EventState.SUCCESS, None)

    async def acomplete(self) -> None:
        """
        Async twin of ``complete``.
        """
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            await bus.achange_state(self, EventState.SUCCESS, None)

    def fail(self, error: AlienError | BaseException) -> None:
        """
        Mark the event failed with an error (an ``AlienError``, or an exception to convert).
        """
        alien_error = _error_from(error)
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            bus.change_state(self, EventState.FAILED, alien_error)

    async def afail(self, error: AlienError | BaseException) -> None:
        """
        Async twin of ``fail``.
        """
        alien_error = _error_from(error)
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            await bus.achange_state(self, EventState.FAILED, alien_error)

    def set_state(self, state: EventState, error: AlienError | BaseException | None = None) -> None:
        """
        Move the event to any state (no transition is checked, as in Rust's ``update_state``).
        """
        new_state = EventState(state)
        alien_error = None if error is None else _error_from(error)
        if self._seq is None:
            return
        bus = self._bus or resolve_bus()
        if bus is not None:
            bus.change_state(self, new_state, alien_error)

    @overload
    def as_parent(self, fn: None = None) -> ParentScope: ...
    @overload
    def as_parent(self, fn: Callable[[EventHandle], R]) -> R: ...

    def as_parent(self, fn: Callable[[EventHandle], R] | None = None) -> ParentScope | R:
        """
        Make this event the parent of all emitted inside: ``with``, ``async with`` or a function.

        ``fn`` gets this handle and its result is returned; for an async ``fn`` that is an
        awaitable. No state change is made (unlike ``in_scope``).
        """
        from alien_events_api._scope import ParentScope  # noqa: PLC0415  (import cycle)

        scope = ParentScope(self)
        if fn is None:
            return scope
        return scope.run(fn)

    def __repr__(self) -> str:
        if self._seq is None:
            return "EventHandle.noop()"
        return f"EventHandle(id={self._id!r}, parent_id={self._parent_id!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not EventHandle:
            return NotImplemented
        assert isinstance(other, EventHandle)  # noqa: S101  (narrowing for the type checker)
        return (self._id, self.parent_id, self._seq is None) == (
            other._id,
            other.parent_id,
            other._seq is None,
        )

    def __hash__(self) -> int:
        return hash(self._id)


def noop_handle(children_parent: str | None = None) -> EventHandle:
    """
    Build a no-op handle whose children still go under ``children_parent`` (the ambient parent).
    """
    handle = _new(EventHandle)
    handle._id = "noop"
    handle._parent_id = children_parent
    handle._bus = None
    handle._seq = None
    handle._epoch = 0
    return handle


NOOP_HANDLE = noop_handle()
