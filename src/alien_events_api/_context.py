"""
Where the current bus and parent live: context variables, the process default, strict mode.
"""

from __future__ import annotations

import contextvars
import functools
import os
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from alien_events_api._errors import NoEventBusContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from alien_events_api._bus import AbstractEventBus
    from alien_events_api._handle import EventHandle

P = ParamSpec("P")
R = TypeVar("R")

current_bus_var: contextvars.ContextVar[AbstractEventBus | None] = contextvars.ContextVar(
    "alien_events_bus", default=None
)
"""The bus of the current context (set by ``bus.run`` and ``with bus:``)."""

current_parent_var: contextvars.ContextVar[EventHandle | None] = contextvars.ContextVar(
    "alien_events_parent", default=None
)
"""The handle of the innermost scope (``in_scope``, ``as_parent``, the decorator)."""


class _Process:
    """The process-wide settings: the default bus and strict mode."""

    __slots__ = ("default_bus", "strict")

    def __init__(self) -> None:
        self.default_bus: AbstractEventBus | None = None
        self.strict = os.environ.get("ALIEN_EVENTS_STRICT", "").strip().lower() in {
            "1",
            "true",
            "yes",
            "on",
        }


process = _Process()


def resolve_bus() -> AbstractEventBus | None:
    """
    Return the bus in context, else the process default; ``None`` (or raise, if strict) otherwise.
    """
    bus = current_bus_var.get()
    if bus is None:
        bus = process.default_bus
        if bus is None and process.strict:
            raise NoEventBusContext(
                "no event bus is reachable: run the code inside `bus.run(...)` or `with bus:`, "
                "or install a process default with alien_events_sdk.set_default_bus(bus); "
                "strict mode is on (ALIEN_EVENTS_STRICT or set_strict(True))"
            )
    return bus


def set_strict(strict: bool) -> bool:
    """
    Turn strict mode (raise when no bus is reachable) on or off; return the old value.
    """
    previous = process.strict
    process.strict = bool(strict)
    return previous


def is_strict() -> bool:
    """
    Whether strict mode is on.
    """
    return process.strict


def set_default_bus(bus: AbstractEventBus | None) -> AbstractEventBus | None:
    """
    Install ``bus`` as the process default (``None`` clears it) and return the previous default.
    """
    previous = process.default_bus
    process.default_bus = bus
    return previous


def get_default_bus() -> AbstractEventBus | None:
    """
    Return the process default bus, or ``None``.
    """
    return process.default_bus


def current_event() -> EventHandle:
    """
    Return the handle of the innermost scope, or the no-op handle outside any scope.
    """
    handle = current_parent_var.get()
    if handle is None:
        from alien_events_api._handle import NOOP_HANDLE  # noqa: PLC0415  (import cycle)

        return NOOP_HANDLE
    return handle


def carry_context(fn: Callable[P, R]) -> Callable[P, R]:
    """
    Return a callable that runs ``fn`` in the caller's current context (bus and parent).

    Use it to hand work to a thread or an executor: ``pool.submit(carry_context(work), x)``.
    Each call runs in its own copy of that context, so it is safe to call from many threads.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run_in_context
