"""
Choosing the display: the mode (live, plain, quiet) and, separately, whether to use colour.

The two are decided apart on purpose: ``FORCE_COLOR`` in a CI job gives coloured plain lines,
never an animation (pip and briefcase users were bitten by the opposite).
"""

from __future__ import annotations

import typing
import warnings
from typing import IO, Literal

from alien_events_console._errors import ConsoleWarning

if typing.TYPE_CHECKING:
    from collections.abc import Mapping

ConsoleMode = Literal["live", "plain", "quiet"]

MODE_VARIABLE = "ALIEN_EVENTS_CONSOLE_MODE"
COLOR_VARIABLE = "ALIEN_EVENTS_CONSOLE_COLOR"
MODES = ("auto", "live", "plain", "quiet")
COLORS = ("auto", "always", "never")
_FALSE = {"", "0", "false", "no", "off"}


def _is_tty(file: IO[str] | None) -> bool:
    isatty = getattr(file, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream is no terminal
        return False


def _setting(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip().lower()
    if not value:
        return "auto"
    if value not in choices:
        warnings.warn(
            ConsoleWarning(
                f"{name}={environ[name]!r} is not one of {', '.join(choices)}; using auto"
            ),
            stacklevel=3,
        )
        return "auto"
    return value


def is_ci(environ: Mapping[str, str]) -> bool:
    """Whether ``CI`` says the program runs in CI (set, and not "", 0, false, no or off)."""
    return environ.get("CI", "").strip().lower() not in _FALSE


def choose_mode(
    requested: str = "auto", *, file: IO[str] | None, environ: Mapping[str, str]
) -> ConsoleMode:
    """
    Return the display mode: ``"live"``, ``"plain"`` or ``"quiet"``.

    ``requested`` other than ``"auto"`` wins. Otherwise ``ALIEN_EVENTS_CONSOLE_MODE``
    (``auto|live|plain|quiet``) decides when set; otherwise ``TERM=dumb`` or ``CI`` give
    plain, and a terminal gives live, anything else plain. Colour plays no part. An unknown
    ``requested`` raises ``ValueError``; an unknown variable value warns (``ConsoleWarning``)
    and counts as ``auto``.
    """
    if not isinstance(requested, str) or requested.strip().lower() not in MODES:
        msg = f"mode must be one of {', '.join(MODES)}, got {requested!r}"
        raise ValueError(msg)
    mode = requested.strip().lower()
    if mode == "auto":
        mode = _setting(environ, MODE_VARIABLE, MODES)
    if mode == "live":
        return "live"
    if mode == "plain":
        return "plain"
    if mode == "quiet":
        return "quiet"
    if environ.get("TERM", "").strip().lower() == "dumb" or is_ci(environ):
        return "plain"
    return "live" if _is_tty(file) else "plain"


def choose_color(
    requested: bool | str | None = None, *, file: IO[str] | None, environ: Mapping[str, str]
) -> bool:
    """
    Return whether to colour the output.

    ``True``/``"always"`` and ``False``/``"never"`` win. For ``None``/``"auto"``:
    ``ALIEN_EVENTS_CONSOLE_COLOR`` (``auto|always|never``) when set, then ``NO_COLOR``
    (any non-empty value: no colour), then ``FORCE_COLOR`` (any non-empty value: colour),
    then ``TERM=dumb`` (no colour), then whether the output is a terminal. The mode plays no
    part. An unknown ``requested`` raises ``ValueError``.
    """
    if requested is True or requested is False:
        return requested
    if requested is None:
        requested = "auto"
    if not isinstance(requested, str) or requested.strip().lower() not in COLORS:
        msg = f"color must be True, False, None or one of {', '.join(COLORS)}, got {requested!r}"
        raise ValueError(msg)
    choice = requested.strip().lower()
    if choice == "auto":
        choice = _setting(environ, COLOR_VARIABLE, COLORS)
    if choice != "auto":
        return choice == "always"
    if environ.get("NO_COLOR", ""):
        return False
    if environ.get("FORCE_COLOR", ""):
        return True
    if environ.get("TERM", "").strip().lower() == "dumb":
        return False
    return _is_tty(file)
