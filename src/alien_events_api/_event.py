"""
``Event``, the base of typed events; ``event_type``, the decorator that makes one; the tag registry.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform, overload

import attrs

from alien_events_api._context import current_bus_var, current_parent_var, process, resolve_bus
from alien_events_api._handle import NOOP_HANDLE, EventHandle, set_event_base
from alien_events_api._state import EventState
from alien_events_api._validation import checked_frozen

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from alien_events_api._alien_error import AlienError
    from alien_events_api._scope import EventScope

E = TypeVar("E", bound="Event")
R = TypeVar("R")

WIRE_NAME = "alien_events.wire_name"
"""Field metadata key: the field's JSON key (default: the field name in camelCase)."""
OMIT_IF_DEFAULT = "alien_events.omit_if_default"
"""Field metadata key: leave the key out of the JSON when the value equals the default."""
JSON_SCHEMA = "alien_events.json_schema"
"""Field metadata key: extra JSON Schema keywords for the field (``{"minimum": 0}``)."""

_registry: dict[str, type[Event]] = {}
_get_bus = current_bus_var.get


def _parent_id_of(parent: EventHandle | str) -> str | None:
    if isinstance(parent, EventHandle):
        return parent.children_parent_id
    if isinstance(parent, str):
        return parent
    msg = f"parent must be an EventHandle, an event id (str) or None, got {type(parent).__name__}"
    raise TypeError(msg)


def _check_naming(id: object, key: object) -> None:
    for name, value in (("id", id), ("key", key)):
        if value is not None and (not isinstance(value, str) or not value):
            msg = f"{name} must be a non-empty str or None, got {value!r}"
            raise TypeError(msg)
    if id is not None and key is not None:
        msg = "give an event either an id or a key, not both (a key is for deriving the id)"
        raise TypeError(msg)


def _check_arguments(state: object, parent: object, error: object, id: object, key: object) -> None:
    _check_state(state)
    _check_parent_and_error(parent, error)
    _check_naming(id, key)


def _check_state(state: object) -> None:
    if state.__class__ is not EventState:
        msg = f"state must be an EventState (EventState.STARTED, ...), got {state!r}"
        raise TypeError(msg)


def _check_parent_and_error(parent: object, error: object) -> None:
    if parent is not None:
        _parent_id_of(parent)  # type: ignore[arg-type]  # raises for a bad parent
    if error is not None:
        from alien_events_api._alien_error import AlienError  # noqa: PLC0415  (import cycle)

        if not isinstance(error, AlienError):
            msg = f"error must be an AlienError or None, got {type(error).__name__}"
            raise TypeError(msg)


class Event:
    """
    Base of every typed event; subclasses are declared with ``@event_type`` (frozen attrs classes).

    ``emit`` creates the event on the bus of the current context; ``in_scope`` runs a body
    inside it. With no bus reachable both return at once with the no-op handle.
    """

    __slots__ = ()
    __event_tag__: ClassVar[str] = ""

    def emit(
        self,
        state: EventState = EventState.NONE,
        *,
        parent: EventHandle | str | None = None,
        error: AlienError | None = None,
        id: str | None = None,
        key: str | None = None,
    ) -> EventHandle:
        """
        Create the event (a ``Created`` change) and return its handle.

        The parent is ``parent`` if given, else the innermost scope. ``error`` goes with a
        ``FAILED`` state. ``id`` sets the event's id (a business key); ``key`` names it among
        its siblings for a bus that derives ids (``DerivedIds``), in place of its type.
        Raises ``EventHandlerError`` if a handler failed.
        """
        bus = _get_bus()
        if bus is None:
            bus = process.default_bus
            if bus is None:
                if (
                    state.__class__ is not EventState
                    or parent is not None
                    or error is not None
                    or id is not None
                    or key is not None
                ):
                    _check_arguments(state, parent, error, id, key)
                if process.strict:
                    resolve_bus()
                return NOOP_HANDLE
        if parent is None:
            ambient = current_parent_var.get()
            if ambient is None:
                parent_id = None
            else:  # the handle's children_parent_id, inlined: this is the hot path
                parent_id = ambient._parent_id if ambient._seq is None else ambient._id
        else:
            parent_id = _parent_id_of(parent)
        if state.__class__ is not EventState:
            _check_state(state)
        if error is not None:
            _check_parent_and_error(None, error)
        if id is None and key is None:
            return bus.emit_event(self, parent_id, state, error)
        _check_naming(id, key)
        return bus.emit_event(self, parent_id, state, error, id=id, key=key)

    def emit_with_state(self, state: EventState) -> EventHandle:
        """
        Create the event in ``state`` (Rust's ``emit_with_state``).
        """
        return self.emit(state)

    def emit_with_parent(self, parent: EventHandle | str) -> EventHandle:
        """
        Create the event under an explicit parent (Rust's ``emit_with_parent``).
        """
        return self.emit(parent=parent)

    async def aemit(
        self,
        state: EventState = EventState.NONE,
        *,
        parent: EventHandle | str | None = None,
        error: AlienError | None = None,
        id: str | None = None,
        key: str | None = None,
    ) -> EventHandle:
        """
        Async twin of ``emit``: awaits async handlers on the running loop.
        """
        bus = resolve_bus()
        _check_state(state)
        _check_parent_and_error(parent, error)
        _check_naming(id, key)
        if bus is None:
            return NOOP_HANDLE
        if parent is None:
            ambient = current_parent_var.get()
            parent_id = None if ambient is None else ambient.children_parent_id
        else:
            parent_id = _parent_id_of(parent)
        if id is None and key is None:
            return await bus.aemit_event(self, parent_id, state, error)
        return await bus.aemit_event(self, parent_id, state, error, id=id, key=key)

    @overload
    def in_scope(
        self, fn: None = None, *, id: str | None = None, key: str | None = None
    ) -> EventScope: ...
    @overload
    def in_scope(
        self,
        fn: Callable[[EventHandle], R],
        *,
        id: str | None = None,
        key: str | None = None,
    ) -> R: ...

    def in_scope(
        self,
        fn: Callable[[EventHandle], R] | None = None,
        *,
        id: str | None = None,
        key: str | None = None,
    ) -> EventScope | R:
        """
        Run a body inside this event: ``with ev.in_scope() as h:``, ``async with`` or a function.

        The event is emitted as started; everything emitted inside becomes its child; it ends
        as success, or failed when the body raises (the exception propagates unchanged).
        ``fn`` gets the handle; for an async ``fn`` the result is an awaitable. ``id`` and
        ``key`` are as for ``emit``.
        """
        from alien_events_api._scope import EventScope  # noqa: PLC0415  (import cycle)

        _check_naming(id, key)
        scope = EventScope(self, id=id, key=key)
        if fn is None:
            return scope
        return scope.run(fn)


set_event_base(Event)


def event_field(
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    wire_name: str | None = None,
    omit_if_default: bool = False,
) -> Any:
    """
    Declare an event field with wire options: its JSON key, and whether a default value is left out.
    """
    metadata: dict[str, Any] = {}
    if wire_name is not None:
        metadata[WIRE_NAME] = wire_name
    if omit_if_default:
        metadata[OMIT_IF_DEFAULT] = True
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


def _register(tag: str, cls: type[Event]) -> None:
    existing = _registry.get(tag)
    if existing is not None and (existing.__module__, existing.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        msg = (
            f"event tag {tag!r} is already used by {existing.__module__}.{existing.__qualname__}; "
            f"give {cls.__qualname__} another tag with @event_type(tag=...)"
        )
        raise ValueError(msg)
    _registry[tag] = cls


@overload
@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field, event_field))
def event_type(cls: type[E], /) -> type[E]: ...
@overload
def event_type(*, tag: str | None = None) -> Callable[[type[E]], type[E]]: ...


def event_type(
    cls: type[E] | None = None, /, *, tag: str | None = None
) -> type[E] | Callable[[type[E]], type[E]]:
    """
    Make an ``Event`` subclass a typed event: frozen attrs class, validated, registered by tag.

    The tag (the JSON ``"type"``) defaults to the class name.
    """

    def make(cls: type[E]) -> type[E]:
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            msg = f"@event_type decorates subclasses of Event, got {cls!r}"
            raise TypeError(msg)
        wire_tag = cls.__name__ if tag is None else tag
        if not isinstance(wire_tag, str) or not wire_tag:
            msg = f"event tag must be a non-empty str, got {wire_tag!r}"
            raise TypeError(msg)
        made = checked_frozen(cls)
        made.__event_tag__ = wire_tag
        _register(wire_tag, made)
        return made

    if cls is None:
        return make
    return make(cls)


def event_types() -> Mapping[str, type[Event]]:
    """
    Return a read-only view of every registered event type, by wire tag.
    """
    return types.MappingProxyType(_registry)


def lookup_event_type(tag: str) -> type[Event] | None:
    """
    Return the event type registered under ``tag``, or ``None``.
    """
    return _registry.get(tag)
