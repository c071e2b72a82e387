"""
``AlienError``: the structured error that a failed event carries.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from alien_events_api._validation import checked_frozen

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_MAX_SOURCE_DEPTH = 32
_HTTP_MIN, _HTTP_MAX = 100, 599
_CANCELLED = "CANCELLED"


def _check_http_status(_instance: object, _attribute: object, value: int | None) -> None:
    if value is not None and not _HTTP_MIN <= value <= _HTTP_MAX:
        from alien_events_api._errors import EventValidationError  # noqa: PLC0415

        raise EventValidationError(
            "AlienError", "http_status_code", f"expected 100..599 or None, got {value}"
        )


def _upper_snake(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).upper()


@checked_frozen
class AlienError:
    """
    What went wrong, for people and programs: code, message, context, hint and a chain of sources.

    Same fields as Rust's ``AlienError`` (``into_generic`` form). ``context`` is any JSON value.
    """

    code: str
    message: str
    context: Any = None
    hint: str | None = None
    retryable: bool = False
    internal: bool = False
    http_status_code: int | None = attrs.field(default=None, validator=_check_http_status)
    source: AlienError | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> AlienError:
        """
        Build an error from any exception; its ``__cause__`` (else ``__context__``) is the source.

        An exception with an ``alien_error`` attribute holding an ``AlienError`` gives that error.
        Otherwise ``code`` is the exception's string ``code`` attribute, else its class name in
        UPPER_SNAKE (``ValueError`` gives ``VALUE_ERROR``), and ``message`` is ``str(exc)`` (the
        class name when empty).
        """
        return _from_exception(exc, set(), 0)

    @property
    def is_cancellation(self) -> bool:
        """
        Whether this is the ``CANCELLED`` error of a scope cut short, not an outcome.

        Stores let such an ending lose a tie with the ending its re-execution reports.
        """
        return self.code == _CANCELLED

    def __str__(self) -> str:
        lines = [f"{self.code}: {self.message}"]
        source, depth = self.source, 0
        while source is not None:
            lines.append(f"{'│   ' * depth}├─▶ {source.code}: {source.message}")
            source, depth = source.source, depth + 1
        return "\n".join(lines)


def _from_exception(exc: BaseException, seen: set[int], depth: int) -> AlienError:
    seen.add(id(exc))
    given = getattr(exc, "alien_error", None)
    if isinstance(given, AlienError):
        return given
    as_alien_error = getattr(exc, "as_alien_error", None)
    if callable(as_alien_error):
        made = as_alien_error()
        if isinstance(made, AlienError):
            return made
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or not code:
        code = _upper_snake(type(exc).__name__)
    try:
        message = str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001  (a broken __str__ must not hide the real failure)
        message = f"<unprintable {type(exc).__name__}>"
    cause = exc.__cause__
    if cause is None and not exc.__suppress_context__:
        cause = exc.__context__
    source = None
    if cause is not None and id(cause) not in seen and depth < _MAX_SOURCE_DEPTH:
        source = _from_exception(cause, seen, depth + 1)
    return AlienError(code=code, message=message, http_status_code=500, source=source)


def cancelled_error(exc: BaseException) -> AlienError:
    """
    Return the ``CANCELLED`` error for a scope ended by cancellation, interrupt or generator close.
    """
    try:
        reason = str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001
        reason = type(exc).__name__
    return AlienError(
        code=_CANCELLED, message=f"cancelled ({reason})", retryable=True, http_status_code=499
    )
