"""
``EventHandler``: what receives changes (an object with ``on_event_change``, or a plain callable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from alien_events_api._changes import EventChange


@runtime_checkable
class EventHandler(Protocol):
    """
    Takes every change a bus delivers; may be sync or async. Raising fails the emitting call.
    """

    def on_event_change(self, change: EventChange) -> Awaitable[None] | None:
        """
        Take one change (persist it, render it, forward it). Must not keep the bus waiting long.
        """


HandlerLike: TypeAlias = "EventHandler | Callable[[EventChange], Awaitable[None] | None]"
"""A handler object, or any callable that takes a change."""
