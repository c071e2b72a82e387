"""
Scopes: ``in_scope`` (emit started, parent the body, then success or failed) and ``as_parent``.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

from alien_events_api._alien_error import AlienError, cancelled_error
from alien_events_api._context import current_parent_var
from alien_events_api._errors import EventHandlerError, EventHandlerWarning
from alien_events_api._handle import EventHandle, noop_handle
from alien_events_api._state import EventState

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from alien_events_api._event import Event

R = TypeVar("R")


def is_async_callable(fn: object) -> bool:
    """
    Whether calling ``fn`` gives an awaitable: coroutine functions, partials, async ``__call__``.
    """
    while hasattr(fn, "func") and callable(fn):  # functools.partial and friends
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (callable objects with an async __call__)
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def terminal_error(exc: BaseException | None) -> AlienError | None:
    """
    Return the error a scope ends with: ``None`` on success, ``CANCELLED`` for a non-Exception.
    """
    if exc is None:
        return None
    if isinstance(exc, Exception):
        return AlienError.from_exception(exc)
    return cancelled_error(exc)


def _warn(what: str, error: EventHandlerError) -> None:
    warnings.warn(
        EventHandlerWarning(f"{what}; the scope carries on with its handle: {error}"),
        stacklevel=4,
    )


class _BaseScope:
    """Sets the parent context for the body and restores it after; subclasses add the lifecycle."""

    __slots__ = ("_handle", "_token")

    _handle: EventHandle | None
    _token: contextvars.Token[EventHandle | None] | None

    def _enter_parent(self, handle: EventHandle) -> None:
        if self._token is not None:
            msg = "a scope object can be entered only once; call in_scope()/as_parent() again"
            raise RuntimeError(msg)
        if handle.is_noop:
            ambient = current_parent_var.get()
            handle = noop_handle(None if ambient is None else ambient.children_parent_id)
        self._token = current_parent_var.set(handle)

    def _exit_parent(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            current_parent_var.reset(token)

    @property
    def handle(self) -> EventHandle:
        """
        The scope's handle (after it was entered).
        """
        if self._handle is None:
            msg = "the scope has not been entered yet"
            raise RuntimeError(msg)
        return self._handle

    def _start(self) -> EventHandle:
        raise NotImplementedError

    async def _astart(self) -> EventHandle:
        raise NotImplementedError

    def _finish(self, exc: BaseException | None) -> None:
        """Called on exit, with the exception that ended the body."""

    async def _afinish(self, exc: BaseException | None) -> None:
        """Async twin of ``_finish``."""

    def __enter__(self) -> EventHandle:
        handle = self._start()
        self._enter_parent(handle)
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit_parent()
        self._finish(exc)

    async def __aenter__(self) -> EventHandle:
        handle = await self._astart()
        self._enter_parent(handle)
        return handle

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit_parent()
        await self._afinish(exc)

    def run(self, fn: Callable[[EventHandle], R]) -> R:
        """
        Run ``fn(handle)`` inside the scope; return its result (an awaitable for an async ``fn``).
        """
        if is_async_callable(fn):
            return typing.cast(
                "R", self._arun(typing.cast("Callable[[EventHandle], Awaitable[Any]]", fn))
            )
        handle = self.__enter__()
        try:
            result = fn(handle)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if inspect.isawaitable(result):
            # A plain function that returned an awaitable (``lambda h: body(h)``): the scope
            # stays open, and the parent set, until that awaitable has been awaited.
            self._exit_parent()
            return typing.cast("R", self._await_inside(handle, result))
        self.__exit__(None, None, None)
        return result

    async def _await_inside(self, handle: EventHandle, awaitable: Awaitable[R]) -> R:
        self._enter_parent(handle)
        try:
            value = await awaitable
        except BaseException as exc:
            self._exit_parent()
            await self._afinish(exc)
            raise
        self._exit_parent()
        await self._afinish(None)
        return value

    async def _arun(self, fn: Callable[[EventHandle], Awaitable[R]]) -> R:
        async with self as handle:
            return await fn(handle)


@typing.final
class ParentScope(_BaseScope):
    """
    ``handle.as_parent()``: children emitted inside get this handle's event as their parent.
    """

    __slots__ = ()

    def __init__(self, handle: EventHandle) -> None:
        self._handle = handle
        self._token = None

    def _start(self) -> EventHandle:
        assert self._handle is not None  # noqa: S101  (set in __init__)
        return self._handle

    async def _astart(self) -> EventHandle:
        return self._start()


@typing.final
class EventScope(_BaseScope):
    """
    ``event.in_scope()``: emit the event as started, parent the body, then mark success or failed.

    An exception in the body fails the event (its ``AlienError`` built from the exception) and
    propagates unchanged; cancellation, ``KeyboardInterrupt`` and generator close fail it with
    code ``CANCELLED``. A handler failure never fails the scope: it is reported once, as an
    ``EventHandlerWarning``, and the scope carries on with the real handle.
    """

    __slots__ = ("_event", "_id", "_key", "_warned")

    def __init__(self, event: Event, *, id: str | None = None, key: str | None = None) -> None:
        self._event = event
        self._id = id
        self._key = key
        self._handle = None
        self._token = None
        self._warned = False

    def _started(self, error: EventHandlerError) -> EventHandle:
        self._warned = True
        _warn(f"emitting {type(self._event).__qualname__} failed", error)
        return error.handle if error.handle is not None else EventHandle.noop()

    def _start(self) -> EventHandle:
        try:
            handle = self._event.emit(EventState.STARTED, id=self._id, key=self._key)
        except EventHandlerError as error:
            handle = self._started(error)
        self._handle = handle
        return handle

    async def _astart(self) -> EventHandle:
        try:
            handle = await self._event.aemit(EventState.STARTED, id=self._id, key=self._key)
        except EventHandlerError as error:
            handle = self._started(error)
        self._handle = handle
        return handle

    def _finished(self, error: EventHandlerError) -> None:
        if not self._warned:
            self._warned = True
            _warn(f"ending {type(self._event).__qualname__} failed", error)

    def _finish(self, exc: BaseException | None) -> None:
        handle = self.handle
        if handle.is_noop:
            return
        try:
            if exc is None:
                handle.complete()
            else:
                handle.fail(typing.cast("AlienError", terminal_error(exc)))
        except EventHandlerError as error:
            self._finished(error)

    async def _afinish(self, exc: BaseException | None) -> None:
        handle = self.handle
        if handle.is_noop:
            return
        try:
            if exc is None:
                await handle.acomplete()
            else:
                await handle.afail(typing.cast("AlienError", terminal_error(exc)))
        except EventHandlerError as error:
            self._finished(error)
