"""
JSON Schema of the wire format: every registered event type, and the change envelope.

For UI code generation (TypeScript, zod, ...). The shapes follow the schemas Alien generates
for its own types: one object per event type with its ``"type"`` tag as a one-value enum.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from alien_events_api import Event, event_types
from alien_events_api._event import JSON_SCHEMA, OMIT_IF_DEFAULT
from alien_events_sdk._codegen import field_hints, wire_name

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_NONE_TYPE = type(None)
_SCALARS: dict[object, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    _NONE_TYPE: {"type": "null"},
}


def _description(cls: type) -> dict[str, str]:
    doc = inspect.getdoc(cls)
    if not doc or doc == inspect.getdoc(Event):
        return {}
    return {"description": doc.strip().split("\n\n")[0].replace("\n", " ")}


def _hint_schema(hint: Any, seen: set[type]) -> dict[str, Any]:  # noqa: C901, PLR0911  (a return per kind)
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    if hint is Any or hint is object:
        return {}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _hint_schema(args[0], seen)
    if origin is typing.Union or origin is types.UnionType:
        # anyOf, not oneOf: alternatives may overlap (float | int, Any | None), and a value
        # that matches two of them is still valid.
        alternatives = [_hint_schema(a, seen) for a in args]
        return {} if {} in alternatives else {"anyOf": alternatives}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple and args and args[-1] is not Ellipsis:
        items = [_hint_schema(a, seen) for a in args]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items)}
    if origin in (tuple, list, Sequence, typing.Sequence, set, frozenset):
        return {"type": "array", "items": _hint_schema(args[0], seen) if args else {}}
    if origin in (dict, Mapping, typing.Mapping):
        values = _hint_schema(args[1], seen) if len(args) == 2 else {}  # noqa: PLR2004
        return {"type": "object", "additionalProperties": values}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if isinstance(hint, type) and attrs.has(hint):
        return object_schema(hint, seen)
    return {}


def _merge(schema: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Add keywords to a field's schema; for an optional field, to its non-null alternative."""
    for alternative in schema.get("anyOf", [schema]):
        if alternative.get("type") != "null":
            alternative.update(extra)


def object_schema(cls: type, seen: set[type] | None = None) -> dict[str, Any]:
    """Return the schema of an attrs class as the wire writes it (an event gets its tag)."""
    seen = set() if seen is None else seen
    if cls in seen:
        return {"type": "object"}  # a recursive type: stop here
    seen = seen | {cls}
    hints = field_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        key = wire_name(field)
        properties[key] = _hint_schema(hints.get(field.name, field.type), seen)
        extra = field.metadata.get(JSON_SCHEMA)
        if extra:
            _merge(properties[key], extra)
        if field.default is attrs.NOTHING and not field.metadata.get(OMIT_IF_DEFAULT):
            required.append(key)
    if issubclass(cls, Event):
        properties["type"] = {"type": "string", "enum": [cls.__event_tag__]}
        required.append("type")
    return {
        "type": "object",
        **_description(cls),
        "required": required,
        "properties": properties,
    }


def event_schema() -> dict[str, Any]:
    """Return the schema of any registered event: one alternative per event type, by tag."""
    return {
        "description": 'Any event this process knows, told apart by its "type" tag',
        "oneOf": [object_schema(cls) for _, cls in sorted(event_types().items())],
    }


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What went wrong: code, message, context, hint, and a chain of sources",
    "required": ["code", "message", "retryable", "internal"],
    "properties": {
        "code": {"type": "string", "maxLength": 128},
        "message": {"type": "string", "maxLength": 16384},
        "context": {},
        "hint": {"type": ["string", "null"]},
        "retryable": {"type": "boolean"},
        "internal": {"type": "boolean"},
        "httpStatusCode": {"type": ["integer", "null"], "minimum": 100, "maximum": 599},
        "source": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/AlienError"}]},
    },
}

_STATE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "enum": ["none", "started", "success"]},
        {
            "type": "object",
            "required": ["failed"],
            "properties": {
                "failed": {
                    "type": "object",
                    "properties": {
                        "error": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/AlienError"}]}
                    },
                }
            },
        },
    ]
}

_SEQ = {
    "type": "integer",
    "minimum": 0,
    "description": "Per event: 0 for created, one more for each later change",
}
_EPOCH = {
    "type": "integer",
    "minimum": 0,
    "description": "Per event: re-execution or hand-over count; (epoch, seq) orders changes",
}
_TIME = {"type": "string", "format": "date-time"}


def change_schema() -> dict[str, Any]:
    """Return the schema of a change (created, updated, stateChanged), events included."""
    event_ref = {"$ref": "#/$defs/AlienEvent"}
    state_ref = {"$ref": "#/$defs/EventState"}
    return {
        "$schema": DRAFT,
        "title": "EventChange",
        "oneOf": [
            {
                "type": "object",
                "description": "A new event was created",
                "required": ["type", "id", "createdAt", "event", "state"],
                "properties": {
                    "type": {"type": "string", "enum": ["created"]},
                    "id": {"type": "string"},
                    "parentId": {"type": ["string", "null"]},
                    "createdAt": _TIME,
                    "event": event_ref,
                    "state": state_ref,
                    "seq": _SEQ,
                    "epoch": _EPOCH,
                },
            },
            {
                "type": "object",
                "description": "An event's data was updated",
                "required": ["type", "id", "updatedAt", "event"],
                "properties": {
                    "type": {"type": "string", "enum": ["updated"]},
                    "id": {"type": "string"},
                    "updatedAt": _TIME,
                    "event": event_ref,
                    "seq": _SEQ,
                    "epoch": _EPOCH,
                },
            },
            {
                "type": "object",
                "description": "An event's state changed",
                "required": ["type", "id", "updatedAt", "newState"],
                "properties": {
                    "type": {"type": "string", "enum": ["stateChanged"]},
                    "id": {"type": "string"},
                    "updatedAt": _TIME,
                    "newState": state_ref,
                    "seq": _SEQ,
                    "epoch": _EPOCH,
                },
            },
        ],
        "$defs": {
            "AlienEvent": event_schema(),
            "EventState": _STATE_SCHEMA,
            "AlienError": _ERROR_SCHEMA,
        },
    }


def json_schema() -> dict[str, Any]:
    """Return the schema of the whole wire format: the change envelope with every event type."""
    return change_schema()
