"""
Timestamps: aware UTC datetimes outside, integer microseconds since the epoch inside.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alien_events_api._errors import EventValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: object, cls_name: str, field: str) -> int:
    """
    Return an aware datetime as microseconds since the epoch; naive datetimes are refused.
    """
    if not isinstance(value, datetime):
        raise EventValidationError(
            cls_name, field, f"expected an aware datetime, got {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventValidationError(
            cls_name, field, "expected an aware datetime (with tzinfo), got a naive one"
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise EventValidationError(
            cls_name, field, f"{value.isoformat()} is outside the years 1..9999 in UTC"
        ) from None
    return (value - EPOCH) // ONE_MICROSECOND


def from_micros(micros: int) -> datetime:
    """
    Return the aware UTC datetime for microseconds since the epoch.
    """
    return EPOCH + timedelta(microseconds=micros)
