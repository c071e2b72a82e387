"""
The changes a bus delivers to handlers: ``Created``, ``Updated`` and ``StateChanged``.

``seq`` numbers an event's changes (``Created`` is 0); it is ``None`` only for changes read
from a producer that does not send it (Alien itself), which stores apply in arrival order.
``epoch`` (0 unless a durable program says otherwise) counts re-executions and hand-overs: a
store keeps, for each event, the change with the highest ``(epoch, seq)``, its ``version``.

They are immutable records built on ``tuple`` rather than attrs classes: the bus makes three
per lifecycle, and a tuple record costs a third of a frozen attrs instance (see
``bench/``). Timestamps are kept as integer microseconds and turned into aware UTC datetimes
when read.
"""

from __future__ import annotations

import typing
from operator import itemgetter
from typing import Any, ClassVar, TypeAlias

from alien_events_api._alien_error import AlienError
from alien_events_api._errors import EventValidationError
from alien_events_api._event import Event
from alien_events_api._state import EventState
from alien_events_api._time import from_micros, to_micros
from alien_events_api._validation import is_count

if typing.TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

_tuple_new = tuple.__new__


def _check(cls_name: str, field: str, ok: bool, expected: str, value: object) -> None:
    if not ok:
        raise EventValidationError(
            cls_name, field, f"expected {expected}, got {type(value).__name__} ({value!r:.60})"
        )


def _check_common(cls_name: str, id: str, seq: int | None, epoch: int) -> None:
    _check(cls_name, "id", isinstance(id, str) and bool(id), "a non-empty str", id)
    _check(cls_name, "seq", seq is None or is_count(seq), "an int >= 0 or None", seq)
    _check(cls_name, "epoch", is_count(epoch), "an int >= 0", epoch)


def _check_state(cls_name: str, field: str, state: object, error: object) -> None:
    _check(cls_name, field, isinstance(state, EventState), "an EventState", state)
    _check(
        cls_name,
        "error",
        error is None or isinstance(error, AlienError),
        "an AlienError or None",
        error,
    )


class _Change(tuple[Any, ...]):
    """Shared behaviour of the three change records: equality by type and fields, repr, replace."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]]
    _time_field: ClassVar[str]

    def __eq__(self, other: object) -> bool:
        return self.__class__ is other.__class__ and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, tuple(self)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__name__}({parts})"

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (_restore, (self.__class__, tuple(self)))

    def __copy__(self) -> _Change:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Change:
        return self

    def as_dict(self) -> dict[str, Any]:
        """
        Return the fields as a dict (Python values; for JSON use the SDK's wire format).
        """
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> typing.Self:
        """
        Return a copy with some fields replaced (like ``attrs.evolve``), checked.
        """
        values = self.as_dict()
        unknown = set(changes) - set(values)
        if unknown:
            msg = f"{self.__class__.__name__} has no field(s) {sorted(unknown)}"
            raise TypeError(msg)
        values.update(changes)
        return self.__class__(**values)

    @property
    def version(self) -> tuple[int, int] | None:
        """
        ``(epoch, seq)``: of two changes to the same event, the higher one is the later.

        ``None`` when the producer sent no ``seq`` (Alien itself); such changes go by arrival.
        """
        seq = self[-2]
        return None if seq is None else (self[-1], seq)

    @property
    def timestamp_micros(self) -> int:
        """
        When the change happened, in microseconds since the Unix epoch (UTC).
        """
        return typing.cast("int", self[2] if self.__class__ is Created else self[1])


def _restore(cls: type[_Change], values: tuple[Any, ...]) -> _Change:
    return _tuple_new(cls, values)


@typing.final
class Created(_Change):
    """
    A new event: its id, parent, creation time, data and initial state (``seq`` 0).
    """

    __slots__ = ()
    _fields = ("id", "parent_id", "created_at", "event", "state", "error", "seq", "epoch")
    __match_args__ = ("id", "parent_id", "created_at", "event", "state", "error", "seq", "epoch")

    id: str = property(itemgetter(0))  # type: ignore[assignment]
    parent_id: str | None = property(itemgetter(1))  # type: ignore[assignment]
    event: Event = property(itemgetter(3))  # type: ignore[assignment]
    state: EventState = property(itemgetter(4))  # type: ignore[assignment]
    error: AlienError | None = property(itemgetter(5))  # type: ignore[assignment]
    seq: int | None = property(itemgetter(6))  # type: ignore[assignment]
    epoch: int = property(itemgetter(7))  # type: ignore[assignment]

    def __new__(
        cls,
        *,
        id: str,
        parent_id: str | None = None,
        created_at: datetime,
        event: Event,
        state: EventState = EventState.NONE,
        error: AlienError | None = None,
        seq: int | None = 0,
        epoch: int = 0,
    ) -> Created:
        """
        Build a ``Created`` change, checking every field.
        """
        _check_common("Created", id, seq, epoch)
        _check(
            "Created",
            "parent_id",
            parent_id is None or isinstance(parent_id, str),
            "str or None",
            parent_id,
        )
        _check("Created", "event", isinstance(event, Event), "an Event", event)
        _check_state("Created", "state", state, error)
        micros = to_micros(created_at, "Created", "created_at")
        return _tuple_new(cls, (id, parent_id, micros, event, state, error, seq, epoch))

    @classmethod
    def unchecked(  # noqa: PLR0917  (the record's fields, in order)
        cls,
        id: str,
        parent_id: str | None,
        micros: int,
        event: Event,
        state: EventState,
        error: AlienError | None,
        seq: int | None = 0,
        epoch: int = 0,
    ) -> Created:
        """
        Build without checks, time in microseconds: for buses and parsers, whose values are good.
        """
        return _tuple_new(cls, (id, parent_id, micros, event, state, error, seq, epoch))

    @property
    def created_at(self) -> datetime:
        """
        When the event was created (aware, UTC).
        """
        return from_micros(self[2])


@typing.final
class Updated(_Change):
    """
    New data for an existing event (for live progress).
    """

    __slots__ = ()
    _fields = ("id", "updated_at", "event", "seq", "epoch")
    __match_args__ = ("id", "updated_at", "event", "seq", "epoch")

    id: str = property(itemgetter(0))  # type: ignore[assignment]
    event: Event = property(itemgetter(2))  # type: ignore[assignment]
    seq: int | None = property(itemgetter(3))  # type: ignore[assignment]
    epoch: int = property(itemgetter(4))  # type: ignore[assignment]

    def __new__(
        cls,
        *,
        id: str,
        updated_at: datetime,
        event: Event,
        seq: int | None = 1,
        epoch: int = 0,
    ) -> Updated:
        """
        Build an ``Updated`` change, checking every field.
        """
        _check_common("Updated", id, seq, epoch)
        _check("Updated", "event", isinstance(event, Event), "an Event", event)
        micros = to_micros(updated_at, "Updated", "updated_at")
        return _tuple_new(cls, (id, micros, event, seq, epoch))

    @classmethod
    def unchecked(
        cls, id: str, micros: int, event: Event, seq: int | None, epoch: int = 0
    ) -> Updated:
        """
        Build without checks, time in microseconds: for buses and parsers, whose values are good.
        """
        return _tuple_new(cls, (id, micros, event, seq, epoch))

    @property
    def updated_at(self) -> datetime:
        """
        When the data changed (aware, UTC).
        """
        return from_micros(self[1])


@typing.final
class StateChanged(_Change):
    """
    An existing event moved to a new state; ``error`` says why when the state is ``FAILED``.
    """

    __slots__ = ()
    _fields = ("id", "updated_at", "new_state", "error", "seq", "epoch")
    __match_args__ = ("id", "updated_at", "new_state", "error", "seq", "epoch")

    id: str = property(itemgetter(0))  # type: ignore[assignment]
    new_state: EventState = property(itemgetter(2))  # type: ignore[assignment]
    error: AlienError | None = property(itemgetter(3))  # type: ignore[assignment]
    seq: int | None = property(itemgetter(4))  # type: ignore[assignment]
    epoch: int = property(itemgetter(5))  # type: ignore[assignment]

    def __new__(
        cls,
        *,
        id: str,
        updated_at: datetime,
        new_state: EventState,
        error: AlienError | None = None,
        seq: int | None = 1,
        epoch: int = 0,
    ) -> StateChanged:
        """
        Build a ``StateChanged`` change, checking every field.
        """
        _check_common("StateChanged", id, seq, epoch)
        _check_state("StateChanged", "new_state", new_state, error)
        micros = to_micros(updated_at, "StateChanged", "updated_at")
        return _tuple_new(cls, (id, micros, new_state, error, seq, epoch))

    @classmethod
    def unchecked(  # noqa: PLR0917  (the record's fields, in order)
        cls,
        id: str,
        micros: int,
        new_state: EventState,
        error: AlienError | None,
        seq: int | None,
        epoch: int = 0,
    ) -> StateChanged:
        """
        Build without checks, time in microseconds: for buses and parsers, whose values are good.
        """
        return _tuple_new(cls, (id, micros, new_state, error, seq, epoch))

    @property
    def updated_at(self) -> datetime:
        """
        When the state changed (aware, UTC).
        """
        return from_micros(self[1])


EventChange: TypeAlias = Created | Updated | StateChanged
"""Any change a handler can receive."""
