"""
Wire timestamps: RFC 3339 in UTC ending in ``Z``, with 0, 3 or 6 fractional digits (Rust's rule).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from alien_events_api._time import EPOCH, ONE_MICROSECOND
from alien_events_sdk._errors import WireFormatError

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MILLI = 1_000
# The millisecond last formatted: (its first microsecond, "YYYY-MM-DDTHH:MM:SS.mmm", and the
# text of that exact microsecond); and the second last formatted: (second, its text). Each is
# swapped whole, so threads never see half of one.
_last: list[tuple[int, str, str]] = [(-(2**63), "", "")]
_last_second: list[tuple[int, str]] = [(-(2**63), "")]
_MICRO_DIGITS = [f"{n:03d}Z" for n in range(_MICROS_PER_MILLI)]
_MILLI_DIGITS = [f".{n:03d}" for n in range(_MICROS_PER_MILLI)]
_MILLI_END = ["Z", *(f".{n:03d}Z" for n in range(1, _MICROS_PER_MILLI))]


def format_micros(micros: int) -> str:
    """
    Return the wire text of a timestamp given in microseconds since the epoch.

    Runs for every change a file handler writes, so it is lean: the text up to the
    millisecond is cached (changes come many to a millisecond), and the last three digits
    come from a table. Another millisecond of a cached second costs two table look-ups;
    only a new second formats a date.
    """
    entry = _last[0]
    micro = micros - entry[0]
    if not 0 <= micro < _MICROS_PER_MILLI:
        entry = _millisecond(micros)
        micro = micros - entry[0]
    if micro:
        return entry[1] + _MICRO_DIGITS[micro]
    return entry[2]


def _millisecond(micros: int) -> tuple[int, str, str]:
    """Cache and return the entry of the millisecond ``micros`` falls in."""
    millis, _ = divmod(micros, _MICROS_PER_MILLI)
    seconds, milli = divmod(millis, _MICROS_PER_MILLI)
    second = _last_second[0]
    if second[0] != seconds:
        second = (seconds, _second_prefix(seconds))
        _last_second[0] = second
    prefix = second[1]
    entry = (millis * _MICROS_PER_MILLI, prefix + _MILLI_DIGITS[milli], prefix + _MILLI_END[milli])
    _last[0] = entry
    return entry


def _second_prefix(seconds: int) -> str:
    t = time.gmtime(seconds)  # not strftime: "%Y" does not pad years below 1000
    day = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    return f"{day}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def parse_micros(text: object, path: str) -> int:
    """
    Read an RFC 3339 timestamp (any offset, any number of fractional digits) as UTC microseconds.

    Digits past the sixth are truncated, as the wire format keeps microseconds.
    """
    if not isinstance(text, str):
        raise WireFormatError(
            path, f"expected an RFC 3339 timestamp string, got {type(text).__name__}"
        )
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise WireFormatError(
            path, f"expected an RFC 3339 timestamp like 2025-01-02T03:04:05Z, got {text!r}"
        )
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    offset = match.group(8)
    normalised = f"{text[: match.start(7) - 1 if match.group(7) else match.end(6)]}.{fraction}"
    try:
        moment = datetime.fromisoformat(f"{normalised}{'+00:00' if offset in 'Zz' else offset}")
        moment.astimezone(UTC)
    except ValueError as exc:
        raise WireFormatError(path, f"not a valid date and time: {text!r} ({exc})") from None
    except OverflowError:
        raise WireFormatError(path, f"{text!r} is outside the years 1..9999 in UTC") from None
    return (moment - EPOCH) // ONE_MICROSECOND
