"""
Field checks generated from type hints, so events are validated at construction.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, dataclass_transform

import attrs

from alien_events_api._errors import EventValidationError

T = TypeVar("T")

Check = Callable[[str, str, Any], Any]
"""Takes (class name, field name, value); returns the value to store or raises."""

_NONE_TYPE = type(None)
_MAX_REPR = 60


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return f"{type(value).__name__} ({text})"


def _fail(cls_name: str, field: str, expected: str, value: object) -> typing.NoReturn:
    raise EventValidationError(cls_name, field, f"expected {expected}, got {_describe(value)}")


def _check_str(cls_name: str, field: str, value: Any) -> Any:
    if value.__class__ is str or isinstance(value, str):
        return value
    _fail(cls_name, field, "str", value)


def is_count(value: object) -> bool:
    """Whether ``value`` is an int >= 0 and not a bool: a ``seq`` or an ``epoch``, anywhere."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_int(cls_name: str, field: str, value: Any) -> Any:
    if value.__class__ is int or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    _fail(cls_name, field, "int", value)


def _check_float(cls_name: str, field: str, value: Any) -> Any:
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    _fail(cls_name, field, "float", value)


def _check_bool(cls_name: str, field: str, value: Any) -> Any:
    if value is True or value is False:
        return value
    _fail(cls_name, field, "bool", value)


def _check_any(_cls_name: str, _field: str, value: Any) -> Any:
    return value


class _SelfReference:
    """Stands for the class being defined, in hints that name it (``source: AlienError | None``)."""


def _check_self(cls_name: str, field: str, value: Any) -> Any:
    # attrs replaces the class with a slotted copy, so the name is all that can be compared.
    if type(value).__qualname__ == cls_name and hasattr(type(value), "__attrs_attrs__"):
        return value
    _fail(cls_name, field, cls_name, value)


def _type_name(hint: object) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _instance_check(cls: type) -> Check:
    name = cls.__name__

    def check(cls_name: str, field: str, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        _fail(cls_name, field, name, value)

    return check


def _optional_check(inner: Check) -> Check:
    def check(cls_name: str, field: str, value: Any) -> Any:
        if value is None:
            return None
        return inner(cls_name, field, value)

    return check


def _union_check(checks: list[Check], expected: str) -> Check:
    def check(cls_name: str, field: str, value: Any) -> Any:
        for candidate in checks:
            try:
                return candidate(cls_name, field, value)
            except EventValidationError:
                continue
        _fail(cls_name, field, expected, value)

    return check


def _sequence_check(item: Check, *, as_tuple: bool, expected: str) -> Check:
    def check(cls_name: str, field: str, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            _fail(cls_name, field, expected, value)
        items = [item(cls_name, f"{field}[{i}]", v) for i, v in enumerate(value)]
        return tuple(items) if as_tuple else items

    return check


def _fixed_tuple_check(items: list[Check], expected: str) -> Check:
    """``tuple[int, str]``: a sequence of exactly that many items, each checked, kept as a tuple."""

    def check(cls_name: str, field: str, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            _fail(cls_name, field, expected, value)
        if len(value) != len(items):
            _fail(cls_name, field, f"{expected} ({len(items)} items)", value)
        return tuple(
            item(cls_name, f"{field}[{i}]", v)
            for i, (item, v) in enumerate(zip(items, value, strict=True))
        )

    return check


def _mapping_check(value_check: Check, expected: str) -> Check:
    def check(cls_name: str, field: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            _fail(cls_name, field, expected, value)
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(cls_name, f"{field} key", "str", key)
            value_check(cls_name, f"{field}[{key!r}]", item)
        return value

    return check


def _literal_check(options: tuple[Any, ...]) -> Check:
    def check(cls_name: str, field: str, value: Any) -> Any:
        # By value and type: ``True == 1`` and ``1.0 == 1``, but neither is ``Literal[1]``.
        if any(value == option and type(value) is type(option) for option in options):
            return value
        _fail(cls_name, field, f"one of {options!r}", value)

    return check


_SCALARS: dict[object, Check] = {
    str: _check_str,
    int: _check_int,
    float: _check_float,
    bool: _check_bool,
    Any: _check_any,
    object: _check_any,
    _SelfReference: _check_self,
}


def check_for(hint: object) -> Check:  # noqa: C901, PLR0911  (one branch per kind of hint)
    """
    Return the check for a type hint; unknown hints are checked with ``isinstance`` when possible.
    """
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return check_for(args[0])
    if origin is typing.Union or origin is types.UnionType:
        non_none = [a for a in args if a is not _NONE_TYPE]
        inner = (
            check_for(non_none[0])
            if len(non_none) == 1
            else _union_check(
                [check_for(a) for a in non_none], " | ".join(_type_name(a) for a in non_none)
            )
        )
        return _optional_check(inner) if len(non_none) < len(args) else inner
    if origin is typing.Literal:
        return _literal_check(args)
    if origin in (tuple, list, Sequence, typing.Sequence) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):  # noqa: PLR2004
            return _fixed_tuple_check([check_for(a) for a in args], _type_name(hint))
        return _sequence_check(
            check_for(args[0]), as_tuple=origin is not list, expected=_type_name(hint)
        )
    if origin in (dict, Mapping, typing.Mapping) and len(args) == 2:  # noqa: PLR2004
        return _mapping_check(check_for(args[1]), _type_name(hint))
    if hint is _NONE_TYPE or hint is None:
        return _literal_check((None,))
    if isinstance(origin, type):
        return _instance_check(origin)
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return _instance_check(hint)
        return _instance_check(hint)
    return _check_any


_INLINE: dict[object, tuple[str, str]] = {
    str: ("v.__class__ is not str and not isinstance(v, str)", "str"),
    int: ("v.__class__ is not int and (not isinstance(v, int) or isinstance(v, bool))", "int"),
    bool: ("v is not True and v is not False", "bool"),
    float: (
        "not isinstance(v, float) and (not isinstance(v, int) or isinstance(v, bool))",
        "float",
    ),
}


def _inline_condition(hint: object) -> tuple[str, str] | None:
    """Return (failure condition on ``v``, expected) for hints cheap enough to check inline."""
    if hint in _INLINE:
        return _INLINE[hint]
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(hint)
        non_none = [a for a in args if a is not _NONE_TYPE]
        if len(non_none) == 1 and len(args) == 2 and non_none[0] in _INLINE:  # noqa: PLR2004
            condition, expected = _INLINE[non_none[0]]
            return f"v is not None and {condition}", f"{expected} or None"
    return None


def _is_sequence_hint(hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin in (tuple, list, Sequence, typing.Sequence):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence_hint(a) for a in typing.get_args(hint))
    if origin is typing.Annotated:
        return _is_sequence_hint(typing.get_args(hint)[0])
    return False


def _converter(check: Check, cls_name: str, name: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return check(cls_name, name, value)

    return convert


def resolve_hints(cls: type, *, self_reference: object, strict: bool) -> dict[str, Any]:
    """
    Resolve the annotations of ``cls`` and its bases, each in the module that defines it.

    Only class-body annotations are read, and the class's own name resolves to
    ``self_reference``. A name that does not resolve raises a clear ``TypeError`` when
    ``strict`` (``ClassVar`` annotations aside: they are not fields), else it is skipped.
    """
    hints: dict[str, Any] = {}
    local_names = {cls.__name__: self_reference}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        module_globals = dict(vars(module)) if module is not None else {}
        for name, annotation in inspect.get_annotations(klass).items():
            if not isinstance(annotation, str):
                hints[name] = annotation
                continue
            try:
                hints[name] = eval(annotation, module_globals, local_names)  # noqa: S307  (a type hint from the class body)
            except NameError as exc:
                if not strict or annotation.startswith(("ClassVar", "typing.ClassVar")):
                    continue
                msg = (
                    f"{cls.__qualname__}.{name}: cannot resolve its type hint {annotation!r} "
                    f"({exc}); import the types it names at module level (not only under "
                    "TYPE_CHECKING)"
                )
                raise TypeError(msg) from None
    return hints


def _field_hints(cls: type) -> dict[str, Any]:
    """The hints of a class being made (its own name is a self-reference), strictly."""
    return resolve_hints(cls, self_reference=_SelfReference, strict=True)


def _add_converters(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Attrs field transformer: sequence fields are converted (a list for a tuple) and checked."""
    hints = _field_hints(cls)
    result = []
    for field in fields:
        hint = hints.get(field.name, field.type)
        if _is_sequence_hint(hint) and field.converter is None:
            convert = _converter(check_for(hint), cls.__qualname__, field.name)
            result.append(field.evolve(converter=convert))
        else:
            result.append(field)
    return result


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    slot = inspect.getattr_static(cls, name, None)
    if isinstance(slot, types.MemberDescriptorType):
        return slot.__set__

    def set_attribute(instance: Any, value: Any) -> None:
        object.__setattr__(instance, name, value)

    return set_attribute


def _store_lines(  # noqa: PLR0917  (the pieces of one generated statement)
    cls: type,
    index: int,
    field: attrs.Attribute[Any],
    hint: object,
    value: str,
    namespace: dict[str, Any],
) -> list[str]:
    """The lines of ``__init__`` that convert ``value`` (an expression), check it and set it."""
    if field.converter is not None:
        namespace[f"_convert_{index}"] = field.converter
        value = f"_convert_{index}({value})"
    lines = []
    check = check_for(hint)
    if field.converter is None and check is not _check_any:
        inline = _inline_condition(hint)
        lines.append(f"v = {value}")
        if inline is not None:
            condition, expected = inline
            lines.append(f"if {condition}: _fail(_cls_name, {field.name!r}, {expected!r}, v)")
        else:
            namespace[f"_check_{index}"] = check
            lines.append(f"_check_{index}(_cls_name, {field.name!r}, v)")
        value = "v"
    namespace[f"_set_{index}"] = _setter(cls, field.name)
    lines.append(f"_set_{index}(self, {value})")
    return lines


def _validator_line(
    index: int, field: attrs.Attribute[Any], value: str, namespace: dict[str, Any]
) -> str:
    """The line of ``__init__`` that runs the field's attrs validator on ``value``."""
    namespace[f"_validate_{index}"] = field.validator
    namespace[f"_field_{index}"] = field
    return f"_validate_{index}(self, _field_{index}, {value})"


def _make_init(cls: type) -> None:  # noqa: C901, PLR0912, PLR0915  (one branch per attrs feature)
    """
    Give a frozen attrs class a generated ``__init__`` that checks each field inline, then sets it.

    Equivalent to the attrs-generated one (defaults, factories, converters, validators,
    ``__attrs_post_init__``), plus type checks from the hints, at half the cost per instance.
    An ``init=False`` field without a default is left for ``__attrs_post_init__`` to set, as
    attrs does, and checked (and converted) once that has run.
    """
    cls_name = cls.__qualname__
    hints = _field_hints(cls)
    namespace: dict[str, Any] = {"_fail": _fail, "_cls_name": cls_name}
    params: list[str] = []
    kw_only: list[str] = []
    body: list[str] = []
    validators: list[str] = []
    late: list[str] = []  # fields __attrs_post_init__ sets: checked after it
    for index, field in enumerate(attrs.fields(cls)):
        arg = field.alias or field.name
        value = arg
        hint = hints.get(field.name, field.type)
        if not field.init:
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                namespace[f"_factory_{index}"] = field.default.factory
                value = f"_factory_{index}()"
            elif field.default is attrs.NOTHING:
                stored = _store_lines(cls, index, field, hint, f"self.{field.name}", namespace)
                if field.validator is not None:
                    stored.append(_validator_line(index, field, f"self.{field.name}", namespace))
                late += [
                    f"    if hasattr(self, {field.name!r}):",
                    *(f"        {x}" for x in stored),
                ]
                continue
            else:
                namespace[f"_default_{index}"] = field.default
                value = f"_default_{index}"
        elif field.default is attrs.NOTHING:
            (kw_only if field.kw_only else params).append(arg)
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            if field.default.takes_self:
                msg = f"{cls_name}.{field.name}: Factory(takes_self=True) is not supported"
                raise TypeError(msg)
            namespace[f"_missing_{index}"] = sentinel = object()
            namespace[f"_factory_{index}"] = field.default.factory
            (kw_only if field.kw_only else params).append(f"{arg}=_missing_{index}")
            body.append(f"    if {arg} is _missing_{index}: {arg} = _factory_{index}()")
            del sentinel
        else:
            namespace[f"_default_{index}"] = field.default
            (kw_only if field.kw_only else params).append(f"{arg}=_default_{index}")
        stored = _store_lines(cls, index, field, hint, value, namespace)
        body += (f"    {line}" for line in stored)
        if field.validator is not None:
            validators.append(
                f"    {_validator_line(index, field, f'self.{field.name}', namespace)}"
            )
    signature = ", ".join(["self", *params, *(["*", *kw_only] if kw_only else [])])
    lines = [f"def __init__({signature}):", *body, *validators]
    if hasattr(cls, "__attrs_post_init__"):
        lines.append("    self.__attrs_post_init__()")
    lines += late
    if len(lines) == 1:
        lines.append("    pass")
    exec("\n".join(lines), namespace)  # noqa: S102  (generated from field names and fixed text)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls_name}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def checked_frozen(cls: type[T]) -> type[T]:
    """
    Make ``cls`` a frozen, slotted attrs class whose fields are checked against their hints.
    """
    made = attrs.frozen(cls, init=False, field_transformer=_add_converters)
    _make_init(made)
    made.__alien_events_checked__ = True  # type: ignore[attr-defined]  # readers skip re-checking
    # Resolve the hints now, in the defining module: tools that resolve them later (cattrs)
    # would look in ``__module__``, which the package rewrites to its public name.
    module = sys.modules.get(made.__module__)
    attrs.resolve_types(
        typing.cast("Any", made),
        globalns={**vars(typing), **(vars(module) if module is not None else {})},
        localns={made.__name__: made},
        include_extras=True,
    )
    return made
