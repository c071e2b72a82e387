"""
Delivery: every handler gets every change, in order, before the emitting call returns.

Handlers are resolved once, when the bus is built, into plain callables, so the hot loop is
bare. A change emitted from inside a handler is queued and delivered, to every handler, after
the change being handled; a chain longer than the bus's limit stops with an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from alien_events_api import EventHandlerError
from alien_events_api._scope import is_async_callable
from alien_events_sdk._loop import run_sync

if TYPE_CHECKING:
    from alien_events_api import EventChange, HandlerLike

SyncCall = Callable[["EventChange"], Any]
AsyncCall = Callable[["EventChange"], Awaitable[Any]]

# The delivery in progress in this context: [bus, queued change, queued change, ...].
# The first item becomes None when the delivery ends, so late emitters deliver for themselves.
_delivery: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "alien_events_delivery", default=None
)


_get_delivery = _delivery.get
_set_delivery = _delivery.set
_reset_delivery = _delivery.reset


def resolve_handler(handler: HandlerLike) -> tuple[Callable[..., Any], bool]:
    """
    Return the callable that takes changes for ``handler``, and whether it is async.
    """
    method = getattr(handler, "on_event_change", None)
    if method is not None and callable(method):
        call: Callable[..., Any] = method
    elif callable(handler):
        call = handler
    else:
        msg = (
            "a handler is an object with on_event_change(change) or a callable taking a change, "
            f"got {type(handler).__name__}"
        )
        raise TypeError(msg)
    return call, is_async_callable(call)


async def _in_delivery(call: AsyncCall, change: EventChange, delivery: list[Any] | None) -> Any:
    _delivery.set(delivery)
    return await call(change)


def _blocking(call: AsyncCall, change: EventChange) -> Any:
    return run_sync(_in_delivery(call, change, _delivery.get()))


def sync_call(call: Callable[..., Any], is_async: bool) -> SyncCall:
    """
    Return a sync callable for a handler: async ones run on the handler loop thread, and we wait.
    """
    return functools.partial(_blocking, call) if is_async else call


class Dispatcher:
    """
    The handlers of one bus and the two delivery loops (sync and async) over them.
    """

    __slots__ = ("_async_calls", "_bus", "_handlers", "_limit", "_sync_calls")

    def __init__(self, bus: object, handlers: tuple[HandlerLike, ...], limit: int) -> None:
        self._bus = bus
        self._limit = limit
        self._handlers: tuple[HandlerLike, ...] = ()
        self._sync_calls: tuple[SyncCall, ...] = ()
        self._async_calls: tuple[tuple[Callable[..., Any], bool], ...] = ()
        self.set_handlers(handlers)

    @property
    def handlers(self) -> tuple[HandlerLike, ...]:
        """The handlers, in delivery order."""
        return self._handlers

    def set_handlers(self, handlers: tuple[HandlerLike, ...]) -> None:
        """Replace the handlers (a new tuple: deliveries in flight keep the old one)."""
        resolved = [resolve_handler(h) for h in handlers]
        self._handlers = handlers
        self._async_calls = tuple(resolved)
        self._sync_calls = tuple(sync_call(call, is_async) for call, is_async in resolved)

    def deliver(self, change: EventChange) -> None:
        """
        Deliver ``change`` to every handler before returning; raise ``EventHandlerError`` after.
        """
        delivery = _get_delivery()
        if delivery is not None and self._joins(delivery, change):
            return
        calls = self._sync_calls
        if not calls:
            return
        delivery = [self]
        token = _set_delivery(delivery)
        errors: list[BaseException] | None = None
        try:
            for call in calls:
                try:
                    call(change)
                except Exception as exc:  # noqa: BLE001  (every handler gets the change first)
                    if errors is None:
                        errors = []
                    errors.append(exc)
            if len(delivery) > 1:
                errors = self._drain(delivery, errors)
        finally:
            delivery[0] = _CLOSING
            _reset_delivery(token)
        try:
            if len(delivery) > 1:  # queued by another thread just as the delivery closed
                errors = self._drain(delivery, errors)
        finally:
            delivery[0] = None
        if errors is not None:
            raise _handler_error(errors)

    def _joins(self, delivery: list[Any], change: EventChange) -> bool:
        """
        Queue ``change`` in this context's delivery if it is still open; ``False`` if it closed.

        A closed delivery may still be delivering what was queued in it before it closed (by
        a thread carrying its context): the change waits for that, so it cannot overtake them.
        """
        if delivery[0] is self and _queued(delivery, change, self):
            return True
        _wait_until_closed(delivery)
        return False

    def _drain(
        self, delivery: list[Any], errors: list[BaseException] | None
    ) -> list[BaseException] | None:
        """Deliver the changes handlers queued, oldest first, claiming each with ``pop``."""
        calls = self._sync_calls
        count = 0
        while len(delivery) > 1:
            try:
                queued = delivery.pop(1)
            except IndexError:  # its emitter took it back after the delivery closed
                break
            count += 1
            if count > self._limit:
                del delivery[1:]
                return [*(errors or []), _runaway(self._limit)]
            for call in calls:
                try:
                    call(queued)
                except Exception as exc:  # noqa: BLE001
                    errors = [*(errors or []), exc]
        return errors

    async def adeliver(self, change: EventChange) -> None:
        """
        Async twin of ``deliver``: async handlers are awaited on the running loop.
        """
        delivery = _delivery.get()
        if delivery is not None:
            if delivery[0] is self and _queued(delivery, change, self):
                return
            await _await_closed(delivery)
        calls = self._async_calls
        if not calls:
            return
        delivery = [self, change]
        token = _delivery.set(delivery)
        errors: list[BaseException] | None = None
        try:
            errors = await self._adrain(delivery, errors, limit=self._limit + 1)
        finally:
            delivery[0] = _ACLOSING
            _delivery.reset(token)
        try:
            if len(delivery) > 1:  # queued by another thread just as the delivery closed
                errors = await self._adrain(delivery, errors, limit=self._limit)
        finally:
            delivery[0] = None
        if errors is not None:
            raise _handler_error(errors)

    async def _adrain(
        self, delivery: list[Any], errors: list[BaseException] | None, *, limit: int
    ) -> list[BaseException] | None:
        """Async twin of ``_drain``: the first change in the list is the one being delivered."""
        calls = self._async_calls
        count = 0
        while len(delivery) > 1:
            try:
                current = delivery.pop(1)
            except IndexError:
                break
            count += 1
            if count > limit:
                del delivery[1:]
                return [*(errors or []), _runaway(self._limit)]
            for call, is_async in calls:
                try:
                    if is_async:
                        await call(current)
                    else:
                        call(current)
                except Exception as exc:  # noqa: BLE001
                    errors = [*(errors or []), exc]
        return errors


def _queued(delivery: list[Any], change: EventChange, owner: object) -> bool:
    """
    Queue a change emitted during a delivery; ``False`` if the delivery closed meanwhile.

    Another thread (a handler's worker with the carried context) may append just as the
    delivery closes: then exactly one side claims the change, the delivery with ``pop`` or the
    emitter with ``remove``, both atomic, and the emitter delivers what it took back itself.
    """
    delivery.append(change)
    if delivery[0] is owner:
        return True
    try:
        delivery.remove(change)
    except ValueError:
        return True
    return False


# A delivery's first item: its dispatcher while open; one of these while it delivers what was
# queued as it closed; None once it is done.
_CLOSING = "closing"
_ACLOSING = "closing on an event loop"
_PATIENCE = 30.0
"""Seconds an emitter waits for a closed delivery before delivering anyway (never a hang)."""


def _wait_until_closed(delivery: list[Any]) -> None:
    """Wait while a closed delivery of this context still delivers what was queued in it."""
    closing = delivery[0]
    if closing is not _CLOSING and (closing is not _ACLOSING or _on_an_event_loop()):
        # Not closing; or closing on an event loop that may be this thread's, which waiting
        # would stop (the async forms wait for it instead).
        return
    pause, deadline = 0.0001, time.monotonic() + _PATIENCE
    while delivery[0] is closing and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _on_an_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _await_closed(delivery: list[Any]) -> None:
    """Async twin of ``_wait_until_closed``: lets the event loop run while it waits."""
    pause, deadline = 0.0001, time.monotonic() + _PATIENCE
    while delivery[0] in {_CLOSING, _ACLOSING} and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.01)


def _runaway(limit: int) -> RuntimeError:
    return RuntimeError(
        f"handlers emitted more than {limit} changes while one change was being delivered; "
        "a handler that emits on every change it receives loops forever "
        "(raise EventBus(max_handler_emits=...) if the chain is intended)"
    )


def _handler_error(errors: list[BaseException]) -> EventHandlerError:
    error = EventHandlerError(errors)
    error.__cause__ = errors[0]
    return error
