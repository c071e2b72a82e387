"""
Formatting shared by the renderers: durations, sizes, progress, error details, wrapping, counts.

Text is built as *pieces*, ``(text, style)`` pairs, so the live frame can turn them into rich
``Text`` and the plain renderer into bare text or ANSI codes, from the same content.
"""

from __future__ import annotations

import math
import typing

import attrs
from rich.cells import cell_len, chop_cells, set_cell_size
from rich.color import ColorSystem
from rich.style import Style

from alien_events_api import AlienError, EventState, PushProgress
from alien_events_console._describe import clean

if typing.TYPE_CHECKING:
    from collections.abc import Mapping

Piece = tuple[str, str]
"""A run of text and its rich style ("" for none)."""

RUNNING = "cyan"
SUCCESS = "green"
FAILED = "bold red"
ERROR = "red"
HINT = "yellow"
DIM = "dim"
BAR_DONE = "cyan"
BAR_LEFT = "dim"

ICON_SUCCESS = "✓"
ICON_FAILED = "✗"
ICON_NONE = "•"
ICON_STARTED = "▶"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_INTERVAL = 0.08  # seconds per spinner frame (rich's "dots")

MAX_SOURCES = 16  # an error's chain of sources shown at most this deep
MAX_MESSAGE_LINES = 12  # lines of one error message shown at most

_MINUTE = 60
_HOUR = 3600
_UNITS = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))
_STATE_WORDS = (
    (EventState.STARTED, "running"),
    (EventState.FAILED, "failed"),
    (EventState.SUCCESS, "succeeded"),
    (EventState.NONE, "info"),
)


def spinner(now: float) -> str:
    """Return the spinner character at time ``now`` (seconds): the animation follows the clock."""
    return SPINNER[int(now / SPINNER_INTERVAL) % len(SPINNER)]


def format_duration(seconds: float) -> str:
    """Return a short duration: ``0.4s``, ``12.3s``, ``2m10s``, ``1h02m``."""
    seconds = max(0.0, seconds)
    if seconds < _MINUTE - 0.05:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < _HOUR:
        return f"{whole // _MINUTE}m{whole % _MINUTE:02d}s"
    return f"{whole // _HOUR}h{whole % _HOUR // _MINUTE:02d}m"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def format_sizes(done: int, total: int) -> str:
    """Return ``done/total`` bytes in the unit of the total: ``1.2/3.0 MB``, ``512/900 B``."""
    for scale, unit in _UNITS:
        if total >= scale:
            return f"{done / scale:.1f}/{total / scale:.1f} {unit}"
    return f"{done}/{total} B"


def percent(current: float, total: float) -> int | None:
    """Return the whole percentage done (0..100), or ``None`` when the total is unknown."""
    if total <= 0 or not math.isfinite(current) or not math.isfinite(total):
        return None
    return int(min(1.0, max(0.0, current / total)) * 100)


def progress_detail(push: PushProgress | None, current: float, total: float) -> str:
    """Return the counts behind a progress: ``2/5 layers · 1.2/3.0 MB``, or ``3/10``."""
    if push is not None:
        parts = []
        if push.total_layers > 0:
            parts.append(f"{push.layers_uploaded}/{push.total_layers} layers")
        if push.total_bytes > 0:
            parts.append(format_sizes(push.bytes_uploaded, push.total_bytes))
        return " · ".join(parts)
    if total > 0:
        return f"{_number(current)}/{_number(total)}"
    return _number(current)


def bar(fraction: float, width: int) -> list[Piece]:
    """Return a progress bar ``width`` cells wide: ``━`` for done, ``─`` for the rest."""
    done = round(min(1.0, max(0.0, fraction)) * width)
    return [("━" * done, BAR_DONE), ("─" * (width - done), BAR_LEFT)]


def fit(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` cells, ending with ``…`` when it was cut."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return set_cell_size(text, width - 1).rstrip() + "…"


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` cells, at spaces where it can."""
    if width < 1:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        if cell_len(word) <= width:
            line = word
        else:
            *full, line = chop_cells(word, width)
            lines.extend(full)
    lines.append(line)
    return lines


@typing.final
@attrs.frozen
class Detail:
    """
    One line of a failure's details: its marker, the marker of its continuation lines, its text.
    """

    marker: str
    continuation: str
    text: str
    style: str

    def lines(self, width: int | None) -> list[list[Piece]]:
        """Return the detail wrapped to ``width`` cells (``None``: not wrapped), as pieces."""
        room = None if width is None else max(8, width - cell_len(self.marker))
        texts = [self.text] if room is None else wrap(self.text, room)
        out = []
        for index, text in enumerate(texts):
            marker = self.marker if index == 0 else self.continuation
            out.append([(marker, DIM), (text, self.style)])
        return out


def _message_lines(message: str) -> list[str]:
    lines = [clean(line) for line in message.splitlines() if line.strip()] or [""]
    if len(lines) > MAX_MESSAGE_LINES:
        hidden = len(lines) - MAX_MESSAGE_LINES + 1
        lines = [*lines[: MAX_MESSAGE_LINES - 1], f"… {hidden} more lines"]
    return lines


def error_details(error: AlienError | None) -> list[Detail]:
    """
    Return a failure's details: ``CODE: message``, its chain of sources, and its hint.

    The sources are drawn as ``AlienError`` prints them (``├─▶``, indented by depth).
    """
    if error is None:
        return [Detail("", "", "failed without an error", DIM)]
    first, *rest = _message_lines(error.message)
    details = [Detail("", "", f"{clean(error.code)}: {first}", ERROR)]
    details.extend(Detail("", "", line, ERROR) for line in rest)
    source, depth = error.source, 0
    while source is not None and depth < MAX_SOURCES:
        indent = "│   " * depth
        head, *more = _message_lines(source.message)
        details.append(
            Detail(f"{indent}├─▶ ", f"{indent}│   ", f"{clean(source.code)}: {head}", ERROR)
        )
        details.extend(Detail(f"{indent}│   ", f"{indent}│   ", line, ERROR) for line in more)
        source, depth = source.source, depth + 1
    if source is not None:
        details.append(Detail("│   " * depth, "", "… more sources", DIM))
    if error.hint:
        details.append(Detail("hint: ", "      ", clean(error.hint), HINT))
    return details


def counts_text(counts: Mapping[EventState, int]) -> str:
    """Return counts by state in words: ``2 running, 1 failed, 9 succeeded, 4 info``."""
    parts = [f"{counts[state]} {word}" for state, word in _STATE_WORDS if counts.get(state)]
    return ", ".join(parts) if parts else "no events"


def plain_text(pieces: list[Piece]) -> str:
    """Return the pieces' text without styles."""
    return "".join(text for text, _ in pieces)


_STYLES: dict[str, Style] = {}


def ansi_text(pieces: list[Piece]) -> str:
    """Return the pieces' text with ANSI colour codes (the 16 standard colours)."""
    out = []
    for text, style in pieces:
        if not text:
            continue
        if not style:
            out.append(text)
            continue
        parsed = _STYLES.get(style)
        if parsed is None:
            parsed = _STYLES[style] = Style.parse(style)
        out.append(parsed.render(text, color_system=ColorSystem.STANDARD))
    return "".join(out)
