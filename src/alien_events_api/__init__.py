"""
alien-events API: typed, user-facing events with a lifecycle, for libraries to emit.

Depends on attrs alone. With no SDK bus reachable every operation is a cheap no-op, so a
library can emit freely and leave the choice of handlers to the application.
"""

from __future__ import annotations

from alien_events_api._alien_error import AlienError
from alien_events_api._alien_events import ALIEN_EVENT_TYPES, AlienEvent, PushProgress
from alien_events_api._bus import AbstractEventBus
from alien_events_api._changes import Created, EventChange, StateChanged, Updated
from alien_events_api._context import carry_context, current_event, is_strict, set_strict
from alien_events_api._decorator import alien_event
from alien_events_api._errors import (
    AlienEventsError,
    AlienEventsWarning,
    EventHandlerError,
    EventHandlerWarning,
    EventValidationError,
    NoEventBusContext,
    PropagationTokenError,
)
from alien_events_api._event import Event, event_field, event_type, event_types, lookup_event_type
from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_api._handle import EventHandle
from alien_events_api._handler import EventHandler, HandlerLike
from alien_events_api._propagation import TOKEN_KEY, extract, format_token, inject, parse_token
from alien_events_api._scope import EventScope, ParentScope
from alien_events_api._state import EventState
from alien_events_api._unknown import UnknownEvent
from alien_events_api._version import __version__

__all__ = [
    "ALIEN_EVENT_TYPES",
    "TOKEN_KEY",
    "AbstractEventBus",
    "AlienError",
    "AlienEvent",
    "AlienEventsError",
    "AlienEventsWarning",
    "Created",
    "Event",
    "EventChange",
    "EventHandle",
    "EventHandler",
    "EventHandlerError",
    "EventHandlerWarning",
    "EventScope",
    "EventState",
    "EventValidationError",
    "HandlerLike",
    "NoEventBusContext",
    "ParentScope",
    "PropagationTokenError",
    "PushProgress",
    "StateChanged",
    "UnknownEvent",
    "Updated",
    "__version__",
    "alien_event",
    "carry_context",
    "current_event",
    "event_field",
    "event_type",
    "event_types",
    "extract",
    "format_token",
    "inject",
    "is_strict",
    "lookup_event_type",
    "parse_token",
    "set_strict",
]

_present_as_public(globals(), __name__, __all__)
