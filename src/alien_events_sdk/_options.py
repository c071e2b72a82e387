"""
Handler options: what a plugin's handler factory accepts, read from code or from the environment.
"""

from __future__ import annotations

import pathlib
import typing
from typing import Any

import attrs

from alien_events_sdk._errors import PluginOptionError

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    msg = "expected one of 1/0, true/false, yes/no, on/off"
    raise ValueError(msg)


_PARSERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: _parse_bool,
    pathlib.Path: pathlib.Path,
}
_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    pathlib.Path: "a path",
}


@typing.final
@attrs.frozen
class Option:
    """
    One option of a handler factory: its type, default, and a line of help.

    ``kind`` is ``str``, ``int``, ``float``, ``bool`` or ``pathlib.Path``; values given in code
    must have that type (an ``int`` is fine for a ``float``, a ``str`` for a path), values from
    the environment are parsed from text.
    """

    kind: type = attrs.field(validator=attrs.validators.in_(tuple(_PARSERS)))
    default: Any = None
    required: bool = False
    help: str = ""

    def expected(self) -> str:
        """Say what the option takes, for error messages."""
        return _NAMES[self.kind]

    def from_code(self, plugin: str, name: str, value: Any) -> Any:
        """Check a value given in code; raise ``PluginOptionError`` naming plugin and option."""
        kind = self.kind
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if kind is pathlib.Path and isinstance(value, str):
            value, ok = pathlib.Path(value), True
        if not ok:
            raise PluginOptionError(plugin, name, f"expected {self.expected()}, got {value!r}")
        return value

    def from_text(self, plugin: str, name: str, text: str) -> Any:
        """Parse a value from the environment; raise ``PluginOptionError`` if it does not parse."""
        try:
            return _PARSERS[self.kind](text)
        except ValueError as exc:
            raise PluginOptionError(
                plugin, name, f"expected {self.expected()}, got {text!r} ({exc})"
            ) from None


def resolve_options(
    plugin: str, spec: Mapping[str, Option], given: Mapping[str, Any], *, from_text: bool
) -> dict[str, Any]:
    """
    Check the options given for a plugin against its spec; fill defaults; refuse unknown ones.
    """
    unknown = sorted(set(given) - set(spec))
    if unknown:
        known = ", ".join(sorted(spec)) or "none"
        raise PluginOptionError(plugin, unknown[0], f"unknown option (the options are: {known})")
    values: dict[str, Any] = {}
    for name, option in spec.items():
        if name in given:
            raw = given[name]
            values[name] = (
                option.from_text(plugin, name, raw)
                if from_text
                else option.from_code(plugin, name, raw)
            )
        elif option.required:
            raise PluginOptionError(plugin, name, f"required: give {option.expected()}")
        else:
            values[name] = option.default
    return values
