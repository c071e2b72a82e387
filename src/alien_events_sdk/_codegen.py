"""
Per-class wire functions, generated once: attrs class to JSON-ready dict, and back.

Field keys are camelCase (Rust's ``rename_all = "camelCase"``) unless a field says otherwise;
values are turned into JSON by their type hint. Types the generator does not know are handed
to the cattrs converter, which is how users extend the wire format.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from alien_events_api import Event, EventValidationError
from alien_events_api._event import OMIT_IF_DEFAULT, WIRE_NAME
from alien_events_api._validation import check_for, resolve_hints
from alien_events_sdk._errors import WireFormatError

if typing.TYPE_CHECKING:
    import cattrs

Unstructure = Callable[[Any], Any]
Structure = Callable[[Any, str], Any]

_PRIMITIVES = (str, int, float, bool, type(None))
_CONTAINERS: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
}
_NONE_TYPE = type(None)


def copy_json(value: Any) -> Any:
    """Copy the dicts and lists of a JSON value: what ``to_dict`` gives never aliases an event."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(item) for item in value]
    return value


def _holds_containers(hint: Any) -> bool:
    """Whether values of a plain hint may hold dicts or lists (``Any``, mappings)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _holds_containers(typing.get_args(hint)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_holds_containers(a) for a in typing.get_args(hint))
    return origin in (dict, Mapping, typing.Mapping)


def camel_case(name: str) -> str:
    """Return ``snake_case`` as ``camelCase`` (``target_triple`` gives ``targetTriple``)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    """Return the JSON key of an attrs field."""
    return typing.cast("str", field.metadata.get(WIRE_NAME) or camel_case(field.name))


def field_hints(cls: type) -> dict[str, Any]:
    """Resolve the type hints of an attrs class's fields, each in the module that defines it."""
    return resolve_hints(cls, self_reference=cls, strict=False)


def _is_optional(hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(hint)
        non_none = [a for a in args if a is not _NONE_TYPE]
        if len(non_none) == 1 and len(args) == 2:  # noqa: PLR2004
            return True, non_none[0]
    return False, hint


def is_plain(hint: Any) -> bool:
    """Whether values of this hint are already JSON (no conversion either way)."""
    if hint in _PRIMITIVES or hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return all(is_plain(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return all(isinstance(a, _PRIMITIVES) for a in typing.get_args(hint))
    if origin is typing.Annotated:
        return is_plain(typing.get_args(hint)[0])
    if origin in (dict, Mapping, typing.Mapping):
        args = typing.get_args(hint)
        return not args or is_plain(args[1])
    return False


class Generator:
    """Makes and caches the wire functions of attrs classes for one converter."""

    def __init__(self, converter: cattrs.Converter) -> None:
        self._converter = converter
        self._dumpers: dict[type, Unstructure] = {}
        self._loaders: dict[type, Structure] = {}

    # -- values by hint ---------------------------------------------------------------------

    def value_dumper(self, hint: Any) -> Unstructure | None:  # noqa: C901, PLR0911  (one per kind)
        """Return how to turn a value of ``hint`` into JSON, or ``None`` when it already is."""
        if typing.get_origin(hint) is typing.Annotated:
            return self.value_dumper(typing.get_args(hint)[0])
        if is_plain(hint):
            return copy_json if _holds_containers(hint) else None
        optional, inner = _is_optional(hint)
        if optional:
            dump = self.value_dumper(inner)
            if dump is None:
                return None
            return lambda v: None if v is None else dump(v)
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Union or origin is types.UnionType:
            return self._union_dumper(args)
        if _is_fixed_tuple(hint):
            items = [self.value_dumper(a) or _same for a in args]
            return lambda v: [dump(x) for dump, x in zip(items, v, strict=True)]
        if origin in (tuple, list, Sequence, typing.Sequence, set, frozenset):
            item = self.value_dumper(args[0]) if args else None
            if item is None:
                return list
            return lambda v: [item(x) for x in v]
        if origin in (dict, Mapping, typing.Mapping):
            value = self.value_dumper(args[1]) if len(args) == 2 else None  # noqa: PLR2004
            if value is None:
                return dict
            return lambda v: {k: value(x) for k, x in v.items()}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return lambda v: v.value
        if isinstance(hint, type) and attrs.has(hint):
            return self.dump_attrs
        return self._converter.unstructure

    def value_loader(self, hint: Any) -> Structure | None:  # noqa: C901, PLR0911  (one per kind)
        """Return how to read a JSON value into ``hint`` (the constructor checks the rest)."""
        if typing.get_origin(hint) is typing.Annotated:
            return self.value_loader(typing.get_args(hint)[0])
        if is_plain(hint):
            return None
        optional, inner = _is_optional(hint)
        if optional:
            load = self.value_loader(inner)
            if load is None:
                return None
            return lambda v, path: None if v is None else load(v, path)
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Union or origin is types.UnionType:
            return self._union_loader(args)
        if _is_fixed_tuple(hint):
            return self._fixed_tuple_loader(args)
        if origin in (tuple, list, Sequence, typing.Sequence, set, frozenset):
            item = self.value_loader(args[0]) if args else None
            container = _CONTAINERS.get(origin, tuple)
            if item is None:
                return lambda v, path: container(_as_list(v, path))
            return lambda v, path: container(
                [item(x, f"{path}[{i}]") for i, x in enumerate(_as_list(v, path))]
            )
        if origin in (dict, Mapping, typing.Mapping):
            value = self.value_loader(args[1]) if len(args) == 2 else None  # noqa: PLR2004
            if value is None:
                return None
            return lambda v, path: {
                k: value(x, f"{path}.{k}") for k, x in _as_dict(v, path).items()
            }
        if isinstance(hint, type) and attrs.has(hint):
            return lambda v, path: self.load_attrs(hint, v, path)
        converter = self._converter
        return lambda v, path: _structure_with(converter, v, hint, path)

    def _union_dumper(self, args: tuple[Any, ...]) -> Unstructure:
        """Write a union's value by the alternative its runtime type matches."""
        choices = [(_runtime_class(a), self.value_dumper(a) or _same) for a in args]
        unstructure = self._converter.unstructure

        def dump(value: Any) -> Any:
            for cls, dump_one in choices:
                if cls is not None and isinstance(value, cls):
                    return dump_one(value)
            return unstructure(value)

        return dump

    def _union_loader(self, args: tuple[Any, ...]) -> Structure:
        """Read a union's value as the first alternative that takes it, in the hint's order."""
        choices = [(check_for(a), self.value_loader(a)) for a in args]
        expected = " | ".join(getattr(a, "__name__", repr(a)) for a in args)

        def load(value: Any, path: str) -> Any:
            for check, load_one in choices:
                try:
                    return check("", path, value if load_one is None else load_one(value, path))
                except (WireFormatError, EventValidationError):
                    continue
            raise WireFormatError(path, f"expected {expected}, got {_json_kind(value)}")

        return load

    def _fixed_tuple_loader(self, args: tuple[Any, ...]) -> Structure:
        """Read ``tuple[int, str]`` from an array of exactly that many items, each by its hint."""
        items = [self.value_loader(a) for a in args]

        def load(value: Any, path: str) -> Any:
            values = _as_list(value, path)
            if len(values) != len(items):
                msg = f"expected an array of {len(items)} items, got {len(values)}"
                raise WireFormatError(path, msg)
            return tuple(
                raw if load_one is None else load_one(raw, f"{path}[{i}]")
                for i, (load_one, raw) in enumerate(zip(items, values, strict=True))
            )

        return load

    # -- attrs classes ----------------------------------------------------------------------

    def dump_attrs(self, obj: Any) -> dict[str, Any]:
        """Return an attrs instance as a JSON-ready dict (an event gets its ``"type"`` first)."""
        return typing.cast("dict[str, Any]", self.dumper(obj.__class__)(obj))

    def dumper(self, cls: type) -> Unstructure:
        """Return (making it once) the dump function of an attrs class."""
        try:
            return self._dumpers[cls]
        except KeyError:
            dump = self._dumpers[cls] = self._make_dumper(cls)
            return dump

    def load_attrs(self, cls: type, data: Any, path: str) -> Any:
        """Build an attrs instance of ``cls`` from a JSON object (the ``"type"`` key is ignored)."""
        try:
            load = self._loaders[cls]
        except KeyError:
            load = self._loaders[cls] = self._make_loader(cls)
        return load(data, path)

    def _make_dumper(self, cls: type) -> Unstructure:
        hints = field_hints(cls)
        namespace: dict[str, Any] = {}
        if issubclass(cls, Event):
            tag = cls.__event_tag__
            if not tag:
                msg = (
                    f"{cls.__qualname__} is not a registered event type: decorate it with "
                    "@event_type"
                )
                raise TypeError(msg)
            head = [f'"type": {tag!r}']
        else:
            head = []
        required: list[str] = []
        optional: list[str] = []
        for index, field in enumerate(attrs.fields(cls)):
            key = wire_name(field)
            dump = self.value_dumper(hints.get(field.name, field.type))
            value = f"obj.{field.name}"
            if dump is not None:
                namespace[f"_dump_{index}"] = dump
                value = f"_dump_{index}({value})"
            if field.metadata.get(OMIT_IF_DEFAULT) and field.default is not attrs.NOTHING:
                default = field.default
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    default = default.factory()  # compare with what it makes
                namespace[f"_default_{index}"] = default
                optional.append(
                    f"    if obj.{field.name} != _default_{index}: out[{key!r}] = {value}"
                )
            else:
                required.append(f"{key!r}: {value}")
        lines = [
            "def dump(obj):",
            f"    out = {{{', '.join(head + required)}}}",
            *optional,
            "    return out",
        ]
        exec("\n".join(lines), namespace)  # noqa: S102  (generated from field names)
        return typing.cast("Unstructure", namespace["dump"])

    def _make_loader(self, cls: type) -> Structure:
        hints = field_hints(cls)
        plan: list[tuple[str, str, Structure | None, bool]] = []
        for field in attrs.fields(cls):
            if not field.init:
                continue
            loader = self.value_loader(hints.get(field.name, field.type))
            has_default = field.default is not attrs.NOTHING
            plan.append((field.alias or field.name, wire_name(field), loader, has_default))
        keys = {arg: key for arg, key, _, _ in plan}
        # A plain attrs class (not an event made with @event_type) checks nothing itself:
        # check what the wire gives against the hints here.
        checks = (
            {}
            if getattr(cls, "__alien_events_checked__", False)
            else {
                (field.alias or field.name): check_for(hints.get(field.name, field.type))
                for field in attrs.fields(cls)
                if field.init
            }
        )
        name = cls.__qualname__

        def load(data: Any, path: str) -> Any:
            values = _as_dict(data, path)
            kwargs: dict[str, Any] = {}
            for arg, key, loader, has_default in plan:
                try:
                    raw = values[key]
                except KeyError:
                    if has_default:
                        continue
                    raise _missing(path, key) from None
                kwargs[arg] = raw if loader is None else loader(raw, _join(path, key))
            try:
                for arg, check in checks.items():
                    if arg in kwargs:
                        check(name, arg, kwargs[arg])
                return cls(**kwargs)
            except (TypeError, ValueError) as exc:
                raise _from_validation(exc, path, keys) from None

        return load


def _same(value: Any) -> Any:
    return value


def _is_fixed_tuple(hint: Any) -> bool:
    """``tuple[int, str]``, not ``tuple[int, ...]``."""
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and bool(args) and args[-1] is not Ellipsis


def _runtime_class(hint: Any) -> type | None:
    """The class a value of ``hint`` is an instance of, if one class tells (for unions)."""
    if isinstance(hint, type):
        return hint
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _runtime_class(typing.get_args(hint)[0])
    return origin if isinstance(origin, type) else None


def _join(path: str, key: str) -> str:
    return key if not path else f"{path}.{key}"


def _missing(path: str, key: str) -> Exception:

    return WireFormatError(_join(path, key), "required field is missing")


def _as_dict(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireFormatError(
            path or "<document>", f"expected a JSON object, got {_json_kind(value)}"
        )
    return value


def _as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireFormatError(path, f"expected a JSON array, got {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for kind, name in kinds.items():
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    return type(value).__name__


def _from_validation(exc: Exception, path: str, keys: Mapping[str, str]) -> Exception:
    if isinstance(exc, EventValidationError):
        name, _, rest = exc.field.partition("[")
        key = keys.get(name, camel_case(name))
        where = _join(path, key) + (f"[{rest}" if rest else "")
        return WireFormatError(where, exc.reason)
    return WireFormatError(path or "<document>", str(exc))


def _structure_with(converter: cattrs.Converter, value: Any, hint: Any, path: str) -> Any:
    try:
        return converter.structure(value, hint)
    except Exception as exc:  # noqa: BLE001  (any converter failure is bad input here)
        raise WireFormatError(path, f"cannot read as {hint!r}: {exc}") from None
