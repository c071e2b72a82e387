"""
``EventBus``: turns emits, updates and state changes into changes and delivers them to handlers.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import itertools
import os
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from alien_events_api import AbstractEventBus, EventHandlerError, EventState
from alien_events_api._alien_error import cancelled_error
from alien_events_api._changes import (
    Created,
    StateChanged,
    Updated,
)
from alien_events_api._context import current_bus_var, process
from alien_events_api._handle import EventHandle
from alien_events_api._scope import is_async_callable
from alien_events_api._time import to_micros
from alien_events_api._validation import is_count
from alien_events_sdk._dispatch import Dispatcher
from alien_events_sdk._durable import ReplayGate, ReplayPolicy
from alien_events_sdk._errors import PluginOptionError
from alien_events_sdk._ids import new_id
from alien_events_sdk._plugins import NO_HANDLERS, build_handlers, plugin_names, strict_from_env

if TYPE_CHECKING:
    from types import TracebackType

    from alien_events_api import (
        AlienError,
        Event,
        EventChange,
        HandlerLike,
    )

P = ParamSpec("P")
R = TypeVar("R")

IdFactory = Callable[..., str]
"""
Makes the id of a new event: ``ids(parent_id, event)``, or ``ids(parent_id, event, key)`` when
the caller named the event with ``key=`` (``DerivedIds`` takes both).
"""
Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""

DEFAULT_MAX_HANDLER_EMITS = 1000

_entered: contextvars.ContextVar[tuple[contextvars.Token[Any], ...]] = contextvars.ContextVar(
    "alien_events_entered", default=()
)


def _check_change(change: object) -> None:
    if not isinstance(change, Created | Updated | StateChanged):
        msg = f"publish() takes Created, Updated or StateChanged, got {type(change).__name__}"
        raise TypeError(msg)


_new = object.__new__
_tuple_new = tuple.__new__
_time_ns = time.time_ns
_count = itertools.count
_new_id = new_id


def _now_micros() -> int:
    return _time_ns() // 1000


def _check_options(
    ids: object, clock: object, epoch: object, is_replaying: object, replay_policy: object
) -> None:
    if ids is not None and not callable(ids):
        msg = f"ids must be a callable (parent_id, event) -> str, got {type(ids).__name__}"
        raise TypeError(msg)
    if clock is not None and not callable(clock):
        msg = f"clock must be a callable returning an aware datetime, got {type(clock).__name__}"
        raise TypeError(msg)
    if not is_count(epoch):
        msg = f"epoch must be an int >= 0, got {epoch!r}"
        raise TypeError(msg)
    if is_replaying is not None and not callable(is_replaying):
        msg = f"is_replaying must be a callable returning a bool, got {type(is_replaying).__name__}"
        raise TypeError(msg)
    try:
        ReplayPolicy(replay_policy)
    except ValueError:
        choices = ", ".join(repr(policy.value) for policy in ReplayPolicy)
        msg = f"replay_policy must be a ReplayPolicy ({choices}), got {replay_policy!r}"
        raise ValueError(msg) from None


def _gated(
    dispatcher: Dispatcher,
    is_replaying: Callable[[], bool] | None,
    replay_policy: ReplayPolicy | str,
) -> Dispatcher | ReplayGate:
    """The dispatcher, behind a replay gate when a hook is given and the policy skips."""
    if is_replaying is None or ReplayPolicy(replay_policy) is ReplayPolicy.DELIVER_ALWAYS:
        return dispatcher
    return ReplayGate(dispatcher, is_replaying)


def _takes_key(ids: IdFactory) -> bool:
    """Whether an ids factory can be called with a third argument, the caller's key."""
    try:
        inspect.signature(ids).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read: assume it can
        return True
    return True


def _clock_micros(clock: Clock) -> Callable[[], int]:
    def now() -> int:
        return to_micros(clock(), "EventBus", "clock()")

    return now


@typing.final
class EventBus(AbstractEventBus):
    """
    Delivers every change to its handlers, in order, before the emitting call returns.

    Make it current with ``bus.run(fn)``, ``with bus:`` or ``async with bus:``; code inside
    (and asyncio tasks it starts) emits to it. ``set_default_bus`` makes it the fallback for
    code outside any context, such as plain threads.
    """

    __slots__ = (
        "_base",
        "_clock",
        "_dispatcher",
        "_epoch",
        "_ids",
        "_is_replaying",
        "_lock",
        "_now",
        "_replay_policy",
    )

    def __init__(
        self,
        handlers: Iterable[HandlerLike] = (),
        *,
        ids: IdFactory | None = None,
        clock: Clock | None = None,
        epoch: int = 0,
        is_replaying: Callable[[], bool] | None = None,
        replay_policy: ReplayPolicy | str = ReplayPolicy.SKIP_ON_REPLAY,
        max_handler_emits: int = DEFAULT_MAX_HANDLER_EMITS,
    ) -> None:
        _check_options(ids, clock, epoch, is_replaying, replay_policy)
        if (
            isinstance(max_handler_emits, bool)
            or not isinstance(max_handler_emits, int)
            or max_handler_emits < 1
        ):
            msg = f"max_handler_emits must be an int >= 1, got {max_handler_emits!r}"
            raise ValueError(msg)
        self._ids = ids
        self._clock = None if clock is None else _clock_micros(clock)
        self._now = _now_micros if self._clock is None else self._clock
        self._epoch = epoch
        self._lock = threading.Lock()
        self._base = Dispatcher(self, tuple(handlers), max_handler_emits)
        self._is_replaying = is_replaying
        self._replay_policy = ReplayPolicy(replay_policy)
        self._dispatcher: Dispatcher | ReplayGate = _gated(
            self._base, is_replaying, self._replay_policy
        )

    def scoped(
        self,
        *,
        ids: IdFactory | None = None,
        clock: Clock | None = None,
        epoch: int | None = None,
        is_replaying: Callable[[], bool] | None = None,
        replay_policy: ReplayPolicy | str | None = None,
    ) -> EventBus:
        """
        Return a bus with the same handlers and some options replaced, for one scope of code.

        ``with bus.scoped(ids=DerivedIds("run-42"), clock=workflow_clock):`` makes it current
        for the body; handles made inside keep its options after the body ends. Options not
        given are this bus's.
        """
        policy = self._replay_policy if replay_policy is None else replay_policy
        _check_options(ids, clock, 0 if epoch is None else epoch, is_replaying, policy)
        derived = _new(EventBus)
        derived._ids = self._ids if ids is None else ids
        derived._clock = self._clock if clock is None else _clock_micros(clock)
        derived._now = _now_micros if derived._clock is None else derived._clock
        derived._epoch = self._epoch if epoch is None else epoch
        derived._lock = self._lock
        derived._base = self._base
        derived._is_replaying = self._is_replaying if is_replaying is None else is_replaying
        derived._replay_policy = ReplayPolicy(policy)
        derived._dispatcher = _gated(derived._base, derived._is_replaying, derived._replay_policy)
        return derived

    @classmethod
    def with_handlers(cls, handlers: Iterable[HandlerLike]) -> EventBus:
        """
        Return a bus with these handlers, kept in the given order (Rust's ``with_handlers``).
        """
        return cls(handlers)

    @classmethod
    def from_plugins(
        cls,
        names: Iterable[str],
        *,
        strict: bool = False,
        ids: IdFactory | None = None,
        clock: Clock | None = None,
        **options: Mapping[str, Any],
    ) -> EventBus:
        """
        Return a bus with handlers made by installed plugins, in the order named.

        Options go by plugin name: ``EventBus.from_plugins(["jsonl"], jsonl={"path": "e.jsonl"})``.
        ``"none"`` alone means no handlers. An unknown name raises ``PluginNotFoundError``
        listing the installed ones; a bad option raises ``PluginOptionError``. A plugin that
        fails to import is skipped unless it is one of ``names`` (or ``strict`` is true).
        """
        names = list(names)
        wanted = [name for name in names if name != NO_HANDLERS]
        if len(wanted) != len(names) and wanted:
            msg = "'none' cannot be combined with other handlers"
            raise PluginOptionError("handlers", "*", msg)
        return cls(build_handlers(wanted, options, strict=strict), ids=ids, clock=clock)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        strict: bool | None = None,
        ids: IdFactory | None = None,
        clock: Clock | None = None,
        **options: Mapping[str, Any],
    ) -> EventBus:
        """
        Return a bus with the handlers named in ``ALIEN_EVENTS_HANDLERS`` (``jsonl,structlog``).

        Each plugin's options come from ``ALIEN_EVENTS_<PLUGIN>_<OPTION>`` variables (options
        given in code win). Unset, empty or ``none`` means no handlers.
        ``ALIEN_EVENTS_PLUGINS_STRICT=1`` makes a plugin that fails to import fatal.
        """
        env = os.environ if environ is None else environ
        names = plugin_names(env.get("ALIEN_EVENTS_HANDLERS", ""))
        strict = strict_from_env(env) if strict is None else strict
        return cls(build_handlers(names, options, strict=strict, environ=env), ids=ids, clock=clock)

    def close(self) -> None:
        """
        Close every handler that has a ``close()`` (files, connections, live displays), in order.

        Every handler is closed even if one fails; then ``EventHandlerError`` reports the
        failures. The bus keeps its handlers: closing is for the end of the program.
        """
        errors = []
        for handler in self.handlers:
            close = getattr(handler, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # noqa: BLE001  (close the others first)
                    errors.append(exc)
        if errors:
            error = EventHandlerError(errors, message=f"closing handlers failed: {errors[0]}")
            raise error from errors[0]

    @property
    def handlers(self) -> tuple[HandlerLike, ...]:
        """
        The handlers, in delivery order.
        """
        return self._base.handlers

    def add_handler(self, handler: HandlerLike) -> None:
        """
        Append a handler to this bus; deliveries already in flight do not see it.
        """
        with self._lock:
            self._base.set_handlers((*self._base.handlers, handler))

    @staticmethod
    def register_handler(handler: HandlerLike) -> EventBus | None:
        """
        Add a handler to the bus of the current context (else the process default) and return it.

        Kept for later runs of that bus. With no bus reachable it does nothing and returns ``None``.
        """
        bus = EventBus.current()
        if bus is not None:
            bus.add_handler(handler)
        return bus

    @staticmethod
    def current() -> EventBus | None:
        """
        Return the bus of the current context, else the process default, else ``None``.
        """
        bus = current_bus_var.get() or process.default_bus
        return bus if isinstance(bus, EventBus) else None

    # -- making the bus current -------------------------------------------------------------

    @typing.overload
    def run(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[R]: ...
    @typing.overload
    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def run(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """
        Call ``fn(*args, **kwargs)`` with this bus current and return its result.

        For an async ``fn`` (or one that returns an awaitable) the result is an awaitable that
        runs it with this bus current. An inner ``run`` shadows an outer one; the parent
        context is kept, as in Rust.
        """
        if is_async_callable(fn):
            return self._arun(fn(*args, **kwargs))
        token = current_bus_var.set(self)
        try:
            result = fn(*args, **kwargs)
        finally:
            current_bus_var.reset(token)
        if inspect.isawaitable(result):
            return self._arun(result)
        return result

    async def _arun(self, awaitable: Awaitable[R]) -> R:
        token = current_bus_var.set(self)
        try:
            return await awaitable
        finally:
            current_bus_var.reset(token)

    def __enter__(self) -> EventBus:
        token = current_bus_var.set(self)
        _entered.set((*_entered.get(), token))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tokens = _entered.get()
        if not tokens or tokens[-1].var is not current_bus_var:
            msg = "EventBus.__exit__ without a matching __enter__ in this context"
            raise RuntimeError(msg)
        _entered.set(tokens[:-1])
        current_bus_var.reset(tokens[-1])

    async def __aenter__(self) -> EventBus:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- the AbstractEventBus operations ---------------------------------------------------

    def _new_event_id(
        self, parent_id: str | None, event: Event, id: str | None = None, key: str | None = None
    ) -> str:
        if id is not None:
            return id
        if self._ids is None:
            return new_id()
        if key is None:
            made = self._ids(parent_id, event)
        else:
            try:
                made = self._ids(parent_id, event, key)
            except TypeError:
                if _takes_key(self._ids):
                    raise
                msg = (
                    f"emit(key={key!r}) needs an ids factory that takes (parent_id, event, key), "
                    f"and this bus's {self._ids!r} takes (parent_id, event) only: add a key "
                    "parameter, or name the event with id= instead"
                )
                raise TypeError(msg) from None
        if not isinstance(made, str) or not made:
            msg = f"the bus's ids factory returned {made!r}; it must return a non-empty str"
            raise TypeError(msg)
        return made

    def emit_event(  # noqa: PLR0917  (positional: cheaper to call)
        self,
        event: Event,
        parent_id: str | None,
        state: EventState,
        error: AlienError | None,
        id: str | None = None,
        key: str | None = None,
    ) -> EventHandle:
        """
        Create the event: deliver its ``Created`` change and return its handle.
        """
        # Hot path: the handle and the change are built inline (each call saved is ~60 ns).
        # The time first: a clock that fails must not use up a derived id.
        now = _time_ns() // 1000 if self._clock is None else self._clock()
        if self._ids is None and id is None:
            event_id = _new_id()
        else:
            event_id = self._new_event_id(parent_id, event, id, key)
        handle = _new(EventHandle)
        handle._id = event_id
        handle._parent_id = parent_id
        handle._bus = self
        handle._seq = _count(1)
        handle._epoch = epoch = self._epoch
        try:
            self._dispatcher.deliver(
                _tuple_new(Created, (event_id, parent_id, now, event, state, error, 0, epoch))
            )
        except EventHandlerError as exc:
            exc.handle = handle
            raise
        except BaseException as exc:
            if state is EventState.STARTED and not isinstance(exc, Exception):
                self._end_interrupted_sync(handle, exc)
            raise
        return handle

    def _end_interrupted_sync(self, handle: EventHandle, exc: BaseException) -> None:
        """
        End an event whose started ``Created`` was interrupted (cancelled, Ctrl-C) mid-delivery.

        Its caller never got the handle, so nobody else can end it, and handlers that already
        saw it started would show it running forever.
        """
        with contextlib.suppress(Exception):
            self.change_state(handle, EventState.FAILED, cancelled_error(exc))

    async def _end_interrupted(self, handle: EventHandle, exc: BaseException) -> None:
        """Async twin of ``_end_interrupted_sync``."""
        with contextlib.suppress(Exception):
            await self.achange_state(handle, EventState.FAILED, cancelled_error(exc))

    async def aemit_event(  # noqa: PLR0917  (positional: cheaper to call)
        self,
        event: Event,
        parent_id: str | None,
        state: EventState,
        error: AlienError | None,
        id: str | None = None,
        key: str | None = None,
    ) -> EventHandle:
        """
        Async twin of ``emit_event``.
        """
        now = self._now()
        event_id = self._new_event_id(parent_id, event, id, key)
        epoch = self._epoch
        handle = EventHandle(event_id, parent_id, bus=self, epoch=epoch)
        change = Created.unchecked(event_id, parent_id, now, event, state, error, 0, epoch)
        try:
            await self._dispatcher.adeliver(change)
        except EventHandlerError as exc:
            exc.handle = handle
            raise
        except BaseException as exc:
            if state is EventState.STARTED and not isinstance(exc, Exception):
                await self._end_interrupted(handle, exc)
            raise
        return handle

    def update_event(self, handle: EventHandle, event: Event) -> None:
        """
        Deliver an ``Updated`` change with the event's new data.
        """
        now = _time_ns() // 1000 if self._clock is None else self._clock()
        self._dispatcher.deliver(
            _tuple_new(Updated, (handle._id, now, event, next(handle._seq), handle._epoch))  # type: ignore[arg-type]
        )

    async def aupdate_event(self, handle: EventHandle, event: Event) -> None:
        """
        Async twin of ``update_event``.
        """
        await self._dispatcher.adeliver(
            Updated.unchecked(handle.id, self._now(), event, handle.next_seq(), handle.epoch)
        )

    def change_state(
        self, handle: EventHandle, state: EventState, error: AlienError | None
    ) -> None:
        """
        Deliver a ``StateChanged`` change.
        """
        now = _time_ns() // 1000 if self._clock is None else self._clock()
        self._dispatcher.deliver(
            _tuple_new(
                StateChanged,
                (handle._id, now, state, error, next(handle._seq), handle._epoch),  # type: ignore[arg-type]
            )
        )

    async def achange_state(
        self, handle: EventHandle, state: EventState, error: AlienError | None
    ) -> None:
        """
        Async twin of ``change_state``.
        """
        await self._dispatcher.adeliver(
            StateChanged.unchecked(
                handle.id, self._now(), state, error, handle.next_seq(), handle.epoch
            )
        )

    def publish(self, change: EventChange) -> None:
        """
        Deliver an existing change as it is (no new id or ``seq``): to replay a recorded stream.
        """
        _check_change(change)
        self._dispatcher.deliver(change)

    async def apublish(self, change: EventChange) -> None:
        """
        Async twin of ``publish``.
        """
        _check_change(change)
        await self._dispatcher.adeliver(change)

    def __repr__(self) -> str:
        return f"<EventBus handlers={len(self.handlers)}>"


def set_default_bus(bus: EventBus | None) -> EventBus | None:
    """
    Install ``bus`` as the process default (``None`` clears it); return the previous default.

    Code that runs outside any ``bus.run``/``with bus:`` (plain threads, late imports) emits
    to it, like OpenTelemetry's global provider.
    """
    if bus is not None and not isinstance(bus, EventBus):
        msg = f"set_default_bus takes an EventBus or None, got {type(bus).__name__}"
        raise TypeError(msg)
    previous = process.default_bus
    process.default_bus = bus
    return previous if isinstance(previous, EventBus) else None
