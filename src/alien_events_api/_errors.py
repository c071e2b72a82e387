"""
Exceptions and warnings of ``alien_events_api``.

The tree::

    AlienEventsError
    ├── EventHandlerError          a handler failed to take a change
    ├── NoEventBusContext          strict mode, and no bus is reachable (also RuntimeError)
    ├── EventValidationError       an event field has the wrong type or value (also TypeError)
    └── PropagationTokenError      a carrier holds a malformed propagation token (also ValueError)

    AlienEventsWarning (UserWarning)
    └── EventHandlerWarning        a scope carried on after a handler failed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alien_events_api._alien_error import AlienError
    from alien_events_api._handle import EventHandle


class AlienEventsError(Exception):
    """
    Root of every exception that alien-events raises.
    """


class EventHandlerError(AlienEventsError):
    """
    One or more handlers raised while taking a change; every handler still got it.

    ``errors`` holds each handler's exception in handler order, ``handle`` the handle of the
    event whose change failed (so an ``emit`` that failed still tells you the id).
    """

    errors: tuple[BaseException, ...]
    handle: EventHandle | None

    def __init__(
        self,
        errors: Sequence[BaseException],
        *,
        handle: EventHandle | None = None,
        message: str | None = None,
    ) -> None:
        self.errors = tuple(errors)
        self.handle = handle
        if message is None:
            details = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
            message = f"Event handler failed: {details}"
        super().__init__(message)

    def as_alien_error(self) -> AlienError:
        """
        Return the Rust-shaped error: ``GENERIC_ERROR``, "Event handler failed", cause as source.
        """
        from alien_events_api._alien_error import AlienError  # noqa: PLC0415  (import cycle)

        source = AlienError.from_exception(self.errors[0]) if self.errors else None
        return AlienError(
            code="GENERIC_ERROR",
            message="Event handler failed",
            context={"message": "Event handler failed"},
            retryable=True,
            http_status_code=500,
            source=source,
        )


class NoEventBusContext(AlienEventsError, RuntimeError):  # noqa: N818  (name taken from the Rust docs)
    """
    Strict mode is on and no event bus is reachable: no bus in context and no process default.
    """


class EventValidationError(AlienEventsError, TypeError):
    """
    An event (or ``PushProgress``, ``AlienError``, change) was built with a bad field value.

    ``cls_name``, ``field`` and ``reason`` say which field of which class, and why.
    """

    def __init__(self, cls_name: str, field: str, reason: str) -> None:
        self.cls_name = cls_name
        self.field = field
        self.reason = reason
        super().__init__(f"{cls_name}.{field}: {reason}")


class PropagationTokenError(AlienEventsError, ValueError):
    """
    ``extract`` found a propagation token it cannot read; ``token`` holds it, as found.
    """

    def __init__(self, token: object, reason: str) -> None:
        self.token = token
        self.reason = reason
        super().__init__(f"bad alien-events propagation token {token!r:.120}: {reason}")


class AlienEventsWarning(UserWarning):
    """
    Root of every warning that alien-events issues.
    """


class EventHandlerWarning(AlienEventsWarning):
    """
    A scope (``in_scope``, ``as_parent``, the decorator) met a handler failure and carried on.
    """
