"""
The wire format: changes, events, states, errors and handles as Rust's JSON, plus seq and epoch.

``dumps``/``loads`` are the JSON text forms, ``to_dict``/``from_dict`` the JSON-ready values,
and ``converter`` the cattrs converter that carries the same hooks, for people who extend it
(register a hook for a type your own events use, and the wire format uses it).
"""

from __future__ import annotations

import json
import math
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import cattrs
import orjson

from alien_events_api import (
    AlienError,
    Created,
    Event,
    EventChange,
    EventHandle,
    EventState,
    StateChanged,
    UnknownEvent,
    Updated,
    lookup_event_type,
)
from alien_events_api._validation import is_count
from alien_events_sdk._codegen import Generator, _as_dict, _json_kind, copy_json
from alien_events_sdk._errors import WireFormatError
from alien_events_sdk._timestamps import format_micros, parse_micros

T = TypeVar("T")

converter = cattrs.Converter()
"""The cattrs converter behind the wire format; register hooks on it for your own field types."""

_generator = Generator(converter)
_FAILED = EventState.FAILED
_STATE_TEXT = {state: state.value for state in EventState if state is not _FAILED}
_TEXT_STATE = {text: state for state, text in _STATE_TEXT.items()}
_event_dumpers: dict[type, Callable[[Any], dict[str, Any]]] = {}
_HTTP_MIN, _HTTP_MAX = 100, 599


# -- writing ------------------------------------------------------------------------------


def error_to_dict(error: AlienError) -> dict[str, Any]:
    """Return an ``AlienError`` as Rust writes it: optional keys left out when empty."""
    top: dict[str, Any] = {}
    out = top
    current: AlienError | None = error
    while current is not None:  # level by level: a deep source chain must not recurse
        out["code"] = current.code
        out["message"] = current.message
        if current.context is not None:
            out["context"] = copy_json(current.context)
        if current.hint is not None:
            out["hint"] = current.hint
        out["retryable"] = current.retryable
        out["internal"] = current.internal
        if current.http_status_code is not None:
            out["httpStatusCode"] = current.http_status_code
        current = current.source
        if current is not None:
            out["source"] = out = {}
    return top


def state_to_json(state: EventState, error: AlienError | None) -> Any:
    """Return a state (with its error, for ``FAILED``) as Rust's ``EventState`` JSON."""
    if state is _FAILED:
        return {"failed": {"error": None if error is None else error_to_dict(error)}}
    return _STATE_TEXT[state]


def event_to_dict(event: Event) -> dict[str, Any]:
    """Return an event as ``{"type": tag, camelCaseField: value, ...}``."""
    cls = event.__class__
    try:
        return _event_dumpers[cls](event)
    except KeyError:
        pass
    if cls is UnknownEvent:
        unknown = typing.cast("UnknownEvent", event)
        return {"type": unknown.tag, **unknown.data}
    if not isinstance(event, Event):
        msg = f"expected an event, got {type(event).__name__}"
        raise TypeError(msg)
    dump = _event_dumpers[cls] = _generator.dumper(cls)
    return typing.cast("dict[str, Any]", dump(event))


def _created(change: Any) -> dict[str, Any]:
    state = change[4]
    out = {
        "type": "created",
        "id": change[0],
        "parentId": change[1],
        "createdAt": format_micros(change[2]),
        "event": event_to_dict(change[3]),
        "state": _STATE_TEXT[state] if state is not _FAILED else state_to_json(state, change[5]),
    }
    if change[6] is not None:
        out["seq"] = change[6]
    if change[7]:
        out["epoch"] = change[7]
    return out


def _updated(change: Any) -> dict[str, Any]:
    out = {
        "type": "updated",
        "id": change[0],
        "updatedAt": format_micros(change[1]),
        "event": event_to_dict(change[2]),
    }
    if change[3] is not None:
        out["seq"] = change[3]
    if change[4]:
        out["epoch"] = change[4]
    return out


def _state_changed(change: Any) -> dict[str, Any]:
    state = change[2]
    out = {
        "type": "stateChanged",
        "id": change[0],
        "updatedAt": format_micros(change[1]),
        "newState": _STATE_TEXT[state] if state is not _FAILED else state_to_json(state, change[3]),
    }
    if change[4] is not None:
        out["seq"] = change[4]
    if change[5]:
        out["epoch"] = change[5]
    return out


_CHANGE_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Created: _created,
    Updated: _updated,
    StateChanged: _state_changed,
}


def change_to_dict(change: EventChange) -> dict[str, Any]:
    """Return a change as its wire dict: ``"type"`` first, camelCase keys, seq and epoch last."""
    return _CHANGE_WRITERS[change.__class__](change)


def handle_to_dict(handle: EventHandle) -> dict[str, Any]:
    """Return a handle as Rust writes it: snake_case ``id`` and ``parent_id`` (no ``is_noop``)."""
    return {"id": handle.id, "parent_id": handle.parent_id}


def to_dict(obj: Any) -> Any:
    """
    Return the JSON-ready value of a change, event, error, handle or state.

    Anything else goes to ``converter.unstructure``.
    """
    writer = _CHANGE_WRITERS.get(obj.__class__)
    if writer is not None:
        return writer(obj)
    if isinstance(obj, Event):
        return event_to_dict(obj)
    if isinstance(obj, AlienError):
        return error_to_dict(obj)
    if isinstance(obj, EventHandle):
        return handle_to_dict(obj)
    if isinstance(obj, EventState):
        return state_to_json(obj, None)
    return converter.unstructure(obj)


_orjson_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


def encode(value: Any) -> bytes:
    """Return compact JSON bytes (orjson; the standard library for what orjson refuses)."""
    try:
        return _orjson_dumps(value)
    except TypeError:  # integers past 64 bits, for one
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(obj: Any) -> str:
    """
    Return the wire JSON text of a change, event, error, handle or state (compact, one line).
    """
    return encode(to_dict(obj)).decode()


def dump_change_line(change: EventChange) -> bytes:
    """
    Return a change as one compact JSON line, newline included: the hot path of file handlers.

    (Measured: building the dict and one orjson call beats building the text directly.)
    """
    value = _CHANGE_WRITERS[change.__class__](change)
    try:
        return _orjson_dumps(value, option=_NEWLINE)
    except TypeError:
        return encode(value) + b"\n"


# -- reading ------------------------------------------------------------------------------


def _field(data: Mapping[str, Any], key: str, path: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise WireFormatError(_join(path, key), "required field is missing") from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _text(value: Any, path: str) -> Any:
    if isinstance(value, str) and value:
        return value
    raise WireFormatError(path, f"expected a non-empty string, got {_json_kind(value)}")


def _parent(value: Any, path: str) -> str | None:
    """A parent id: any string (Rust can write ``""``), or null."""
    if value is None or isinstance(value, str):
        return value
    raise WireFormatError(path, f"expected a string or null, got {_json_kind(value)}")


def _seq(data: Mapping[str, Any], path: str) -> int | None:
    value = data.get("seq")
    if value is None or is_count(value):
        return typing.cast("int | None", value)
    raise _not_a_count(path, "seq", value)


def _epoch(data: Mapping[str, Any], path: str) -> int:
    value = data.get("epoch", 0)  # null is refused: we never write it
    if is_count(value):
        return typing.cast("int", value)
    raise _not_a_count(path, "epoch", value)


def _not_a_count(path: str, key: str, value: Any) -> WireFormatError:
    return WireFormatError(_join(path, key), f"expected an integer >= 0, got {_json_kind(value)}")


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise WireFormatError(path, f"expected true or false, got {_json_kind(value)}")


def _error_fields(data: Any, path: str) -> dict[str, Any]:
    """Check one level of an error (all but its source) and return its constructor arguments."""
    values = _as_dict(data, path)
    status = values.get("httpStatusCode")
    hint = values.get("hint")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise WireFormatError(
            _join(path, "httpStatusCode"), f"expected an integer, got {_json_kind(status)}"
        )
    if status is not None and not _HTTP_MIN <= status <= _HTTP_MAX:
        raise WireFormatError(_join(path, "httpStatusCode"), f"expected 100..599, got {status}")
    if hint is not None and not isinstance(hint, str):
        raise WireFormatError(_join(path, "hint"), f"expected a string, got {_json_kind(hint)}")
    code = _field(values, "code", path)
    message = _field(values, "message", path)
    for key, value in (("code", code), ("message", message)):
        if not isinstance(value, str):
            raise WireFormatError(_join(path, key), f"expected a string, got {_json_kind(value)}")
    return {
        "code": code,
        "message": message,
        "context": values.get("context"),
        "hint": hint,
        "retryable": _bool(_field(values, "retryable", path), _join(path, "retryable")),
        "internal": _bool(_field(values, "internal", path), _join(path, "internal")),
        "http_status_code": status,
    }


def error_from_dict(data: Any, path: str = "") -> AlienError:
    """
    Read an ``AlienError`` (``code``, ``message``, ``retryable``, ``internal`` required).

    The ``source`` chain is read level by level, not recursively, so any depth the JSON
    parser accepts reads back.
    """
    levels: list[dict[str, Any]] = []
    current, where = data, path
    while True:
        fields = _error_fields(current, where)
        levels.append(fields)
        source = current.get("source")
        if source is None:
            break
        current, where = source, _join(where, "source")
    error: AlienError | None = None
    for fields in reversed(levels):
        error = AlienError(**fields, source=error)
    return typing.cast("AlienError", error)


def state_from_json(data: Any, path: str = "") -> tuple[EventState, AlienError | None]:
    """Read Rust's ``EventState`` JSON into (state, error)."""
    if isinstance(data, str):
        state = _TEXT_STATE.get(data)
        if state is None:
            raise WireFormatError(
                path or "<document>",
                f'expected "none", "started", "success" or {{"failed": ...}}, got {data!r}',
            )
        return state, None
    if isinstance(data, Mapping) and len(data) == 1:
        ((key, value),) = data.items()
        if key == "failed":
            failed = _as_dict(value, _join(path, "failed"))
            raw = failed.get("error")
            error = None if raw is None else error_from_dict(raw, _join(path, "failed.error"))
            return _FAILED, error
        if key in _TEXT_STATE and value is None:  # serde's map form of a unit state
            return _TEXT_STATE[key], None
    raise WireFormatError(
        path or "<document>",
        f'expected "none", "started", "success" or {{"failed": ...}}, got {_json_kind(data)}',
    )


def event_from_dict(data: Any, path: str = "") -> Event:
    """Read an event by its ``"type"`` tag; an unknown tag gives an ``UnknownEvent``, kept whole."""
    values = _as_dict(data, path)
    tag = _field(values, "type", path)
    if not isinstance(tag, str) or not tag:
        raise WireFormatError(
            _join(path, "type"), f"expected a non-empty string, got {_json_kind(tag)}"
        )
    cls = lookup_event_type(tag)
    if cls is None:
        return UnknownEvent(tag=tag, data={k: v for k, v in values.items() if k != "type"})
    return typing.cast("Event", _generator.load_attrs(cls, values, path))


def change_from_dict(data: Any, path: str = "") -> EventChange:
    """Read a change (``created``, ``updated`` or ``stateChanged``)."""
    values = _as_dict(data, path)
    kind = _field(values, "type", path)
    change_id = _text(_field(values, "id", path), _join(path, "id"))
    if kind == "created":
        parent = _parent(values.get("parentId"), _join(path, "parentId"))
        created = parse_micros(_field(values, "createdAt", path), _join(path, "createdAt"))
        event = event_from_dict(_field(values, "event", path), _join(path, "event"))
        state, error = state_from_json(_field(values, "state", path), _join(path, "state"))
        return Created.unchecked(
            change_id,
            parent,
            created,
            event,
            state,
            error,
            _seq(values, path),
            _epoch(values, path),
        )
    if kind == "updated":
        updated = parse_micros(_field(values, "updatedAt", path), _join(path, "updatedAt"))
        event = event_from_dict(_field(values, "event", path), _join(path, "event"))
        return Updated.unchecked(
            change_id, updated, event, _seq(values, path), _epoch(values, path)
        )
    if kind == "stateChanged":
        updated = parse_micros(_field(values, "updatedAt", path), _join(path, "updatedAt"))
        state, error = state_from_json(_field(values, "newState", path), _join(path, "newState"))
        return StateChanged.unchecked(
            change_id, updated, state, error, _seq(values, path), _epoch(values, path)
        )
    raise WireFormatError(
        _join(path, "type"), f'expected "created", "updated" or "stateChanged", got {kind!r}'
    )


def handle_from_dict(data: Any, path: str = "") -> EventHandle:
    """Read a handle (``{"id": ..., "parent_id": ...}``); it is never the no-op handle."""
    values = _as_dict(data, path)
    handle_id = _text(_field(values, "id", path), _join(path, "id"))
    parent = _parent(values.get("parent_id"), _join(path, "parent_id"))
    return EventHandle(handle_id, parent)


_CHANGE_CLASSES = (Created, Updated, StateChanged)


@overload
def from_dict(data: Any) -> EventChange: ...
@overload
def from_dict(data: Any, cls: type[T]) -> T: ...
@overload
def from_dict(data: Any, cls: Any) -> Any: ...


def from_dict(data: Any, cls: Any = EventChange) -> Any:
    """
    Read a JSON-ready value as ``cls``: a change (the default), event, error, handle or state.

    Raises ``WireFormatError`` naming the field and the reason. Other types go to
    ``converter.structure``.
    """
    if cls is EventChange or cls in _CHANGE_CLASSES:
        change = change_from_dict(data)
        if cls is not EventChange and not isinstance(change, cls):
            raise WireFormatError(
                "type", f"expected a {cls.__name__} change, got {type(change).__name__}"
            )
        return change
    if isinstance(cls, type) and issubclass(cls, Event):
        event = event_from_dict(data)
        if not isinstance(event, cls):
            raise WireFormatError(
                "type", f"expected a {cls.__qualname__} event, got {type(event).__qualname__}"
            )
        return event
    if cls is AlienError:
        return error_from_dict(data)
    if cls is EventHandle:
        return handle_from_dict(data)
    if cls is EventState:
        return state_from_json(data)[0]
    try:
        return converter.structure(data, cls)
    except cattrs.errors.BaseValidationError as exc:
        raise _first_failure(exc, "") from exc


def _first_failure(error: BaseException, path: str) -> WireFormatError:
    """
    The first failure inside cattrs' exception groups, as a ``WireFormatError`` with its path.

    cattrs collects what went wrong (a list item, a class attribute) in groups whose notes say
    where; bad input should still raise the one error ``from_dict`` promises.
    """
    if isinstance(error, cattrs.errors.BaseValidationError) and error.exceptions:
        inner = error.exceptions[0]
        for note in getattr(inner, "__notes__", ()):
            if isinstance(note, cattrs.errors.IterableValidationNote):
                path = f"{path}[{note.index}]"
            elif isinstance(note, cattrs.errors.AttributeValidationNote):
                path = _join(path, note.name)
        return _first_failure(inner, path)
    if isinstance(error, WireFormatError):
        return WireFormatError(
            _join(path, error.path) if error.path != "<document>" else path or error.path,
            error.reason,
        )
    return WireFormatError(path or "<document>", str(error))


# 19 digits in a row may be an integer orjson cannot hold (past -2**63 or 2**64 - 1), which it
# would read as a float; such text goes to the standard library, which reads it exactly.
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def decode(text: str | bytes) -> Any:
    """Read JSON text (orjson; the standard library for integers past 64 bits, read exactly)."""
    pattern = _LONG_DIGITS_BYTES if isinstance(text, bytes | bytearray) else _LONG_DIGITS
    if pattern.search(text) is None:  # type: ignore[arg-type]
        return orjson.loads(text)
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def _finite_float(text: str) -> float:
    """A JSON number as a float, refusing one past the float range (as orjson does)."""
    value = float(text)
    if math.isinf(value):
        msg = f"number is infinity when parsed as double: {text}"
        raise ValueError(msg)
    return value


def _no_constant(text: str) -> float:
    """Refuse ``NaN`` and ``Infinity``, which are not JSON (the standard library takes them)."""
    msg = f"{text} is not valid JSON"
    raise ValueError(msg)


def loads(text: str | bytes) -> EventChange:
    """Read one change from its JSON text; ``WireFormatError`` if it is not JSON or not a change."""
    try:
        data = decode(text)
    except ValueError as exc:  # orjson's and json's decode errors are both ValueErrors
        raise WireFormatError("<document>", f"not JSON: {exc}") from None
    return change_from_dict(data)


def _register_hooks() -> None:
    """Teach ``converter`` the wire format: ``converter.unstructure(x)`` matches ``to_dict(x)``."""

    def is_change(t: Any) -> bool:
        return t is EventChange or (isinstance(t, type) and issubclass(t, _CHANGE_CLASSES))

    def is_event(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, Event)

    converter.register_unstructure_hook_func(is_change, change_to_dict)
    converter.register_unstructure_hook_func(is_event, event_to_dict)
    converter.register_unstructure_hook(AlienError, error_to_dict)
    converter.register_unstructure_hook(EventHandle, handle_to_dict)
    converter.register_unstructure_hook(EventState, lambda state: state_to_json(state, None))
    converter.register_structure_hook_func(is_change, from_dict)
    converter.register_structure_hook_func(is_event, from_dict)
    converter.register_structure_hook(AlienError, lambda data, _: error_from_dict(data))
    converter.register_structure_hook(EventHandle, lambda data, _: handle_from_dict(data))
    converter.register_structure_hook(EventState, lambda data, _: state_from_json(data)[0])


_register_hooks()
