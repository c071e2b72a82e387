"""
The interface between the API and a bus implementation (the SDK's ``EventBus`` is one).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alien_events_api._alien_error import AlienError
    from alien_events_api._event import Event
    from alien_events_api._handle import EventHandle
    from alien_events_api._state import EventState


class AbstractEventBus(abc.ABC):
    """
    What the API calls on the bus it finds in context; implementations build and deliver changes.

    Every method delivers before it returns (events are blocking) and raises
    ``EventHandlerError`` when a handler failed. The ``a``-prefixed twins await async handlers.
    """

    __slots__ = ()

    @abc.abstractmethod
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

        ``id`` is the caller's id for it; ``key`` names it among its siblings when ids are
        derived. The API passes them only when the caller gave one, as keywords. (They are
        not keyword-only: a function with keyword-only defaults costs more to call.)
        """

    @abc.abstractmethod
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

    @abc.abstractmethod
    def update_event(self, handle: EventHandle, event: Event) -> None:
        """
        Replace the event's data: deliver an ``Updated`` change.
        """

    @abc.abstractmethod
    async def aupdate_event(self, handle: EventHandle, event: Event) -> None:
        """
        Async twin of ``update_event``.
        """

    @abc.abstractmethod
    def change_state(
        self, handle: EventHandle, state: EventState, error: AlienError | None
    ) -> None:
        """
        Move the event to a new state: deliver a ``StateChanged`` change.
        """

    @abc.abstractmethod
    async def achange_state(
        self, handle: EventHandle, state: EventState, error: AlienError | None
    ) -> None:
        """
        Async twin of ``change_state``.
        """
