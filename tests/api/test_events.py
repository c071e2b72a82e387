"""
Tests of ``Event``, ``@event_type`` and the tag registry (``alien_events_api._event``).

Also the field checks generated from type hints (``alien_events_api._validation``).
"""

import enum
import inspect
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    AlienError,
    AlienEvent,
    AlienEventsError,
    Created,
    Event,
    EventHandle,
    EventState,
    EventValidationError,
    NoEventBusContext,
    event_field,
    event_type,
    event_types,
    lookup_event_type,
    set_strict,
)
from alien_events_api._event import OMIT_IF_DEFAULT, WIRE_NAME

# -- test-only types ----------------------------------------------------------------------------


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Point3(Point):
    z: int = 0


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


@event_type(tag="ApiTestEverything")
class Everything(Event):
    """One field per kind of hint the checks understand."""

    label: str
    count: int
    ratio: float
    flag: bool
    maybe: int | None
    tags: Sequence[str]
    counts: Mapping[str, int]
    point: Point
    mode: Literal["fast", "slow"]
    level: Level
    either: int | str = 0
    anything: Any = None
    numbers: list[int] = attrs.field(factory=list)
    pair: tuple[str, ...] = ()
    note: str = "none"
    token: str = attrs.field(kw_only=True, default="t")
    priority: int = attrs.field(kw_only=True)


def everything(**changes: Any) -> Everything:
    """An ``Everything`` with good values, some replaced."""
    values: dict[str, Any] = {
        "label": "l",
        "count": 1,
        "ratio": 0.5,
        "flag": True,
        "maybe": None,
        "tags": ["a", "b"],
        "counts": {"a": 1},
        "point": Point(1, 2),
        "mode": "fast",
        "level": Level.LOW,
        "priority": 3,
    }
    values.update(changes)
    return Everything(**values)


@event_type(tag="ApiTestNode")
class Node(Event):
    """An event type whose field names the type itself."""

    name: str
    child: "Node | None" = None


@event_type(tag="ApiTestBase")
class Base(Event):
    """A user-defined event type that another one extends."""

    stack: str


@event_type(tag="ApiTestDerived")
class Derived(Base):
    """Extends ``Base`` with one more field."""

    attempt: int = 0


@event_type(tag="ApiTestChecked")
class Checked(Event):
    """Has an attrs validator and a post-init hook."""

    size: int = attrs.field(validator=attrs.validators.ge(1))
    seen: list[int] = attrs.field(factory=list, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.size)


@event_type(tag="ApiTestWire")
class Wire(Event):
    """Fields with wire options."""

    plain: str
    renamed: str = event_field(default="r", wire_name="theName")
    skipped: str | None = event_field(default=None, omit_if_default=True)
    listed: Sequence[str] = event_field(factory=tuple, omit_if_default=True)


@event_type
class ApiTestDefaultTag(Event):
    """Registered under its class name."""


def redefine() -> type[Event]:
    """Define the same class (same module and qualname) again, as a module reload does."""

    @event_type(tag="ApiTestReloaded")
    class Reloaded(Event):
        value: str

    return Reloaded


# -- strategies ---------------------------------------------------------------------------------


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.complex_numbers(),
    st.decimals(allow_nan=False),
    st.fractions(),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.text(max_size=3)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.builds(object),
    st.sampled_from([Level.LOW, Point(0, 0), str, ...]),
)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- tests --------------------------------------------------------------------------------------


class TestEventTypeDecorator:
    def test_tag_defaults_to_the_class_name(self):
        """Without a tag, the wire tag is the class name and the registry maps it to the class."""
        assert "ApiTestDefaultTag" == ApiTestDefaultTag.__event_tag__
        assert ApiTestDefaultTag is lookup_event_type("ApiTestDefaultTag")

    def test_explicit_tag_is_registered(self):
        """``@event_type(tag=...)`` registers the class under that tag, not its name."""
        assert "ApiTestEverything" == Everything.__event_tag__
        assert Everything is lookup_event_type("ApiTestEverything")
        assert lookup_event_type("Everything") is None

    def test_registry_is_a_read_only_view(self):
        """``event_types()`` lists every registered type by tag and cannot be written to."""
        registry = event_types()
        assert Everything is registry["ApiTestEverything"]
        assert AlienEvent.BuildingStack is registry["BuildingStack"]
        with pytest.raises(TypeError):
            registry["Hijack"] = Everything  # type: ignore[index]

    def test_registry_view_sees_later_registrations(self):
        """A view taken before a type is defined lists it once it is defined."""
        registry = event_types()
        tag = f"ApiTestLate-{uuid.uuid4()}"
        assert tag not in registry

        @event_type(tag=tag)
        class Late(Event):
            pass

        assert Late is registry[tag]

    def test_unknown_tag_looks_up_none(self):
        """Looking up a tag nobody registered gives ``None``."""
        assert lookup_event_type("ApiTestNobodyHasThisTag") is None

    def test_decorated_class_is_an_event_subclass(self):
        """The decorated class is still an ``Event`` subclass and keeps its name and doc."""
        assert issubclass(Everything, Event)
        assert "Everything" == Everything.__name__
        assert "One field per kind of hint the checks understand." == Everything.__doc__

    def test_refuses_a_class_that_is_not_an_event(self):
        """Decorating a class that does not derive from ``Event`` is a ``TypeError``."""
        with pytest.raises(TypeError, match="subclasses of Event"):

            @event_type
            class NotAnEvent:
                pass

    @pytest.mark.parametrize("tag", ["", 3, None.__class__])
    def test_refuses_a_bad_tag(self, tag):
        """A tag that is not a non-empty ``str`` is a ``TypeError``."""
        with pytest.raises(TypeError, match="non-empty str"):

            @event_type(tag=tag)
            class BadTag(Event):
                pass

    def test_duplicate_tag_is_an_error_naming_both_classes(self):
        """A second class under a tag already taken is a ``ValueError`` naming both classes."""
        with pytest.raises(ValueError, match="ApiTestEverything") as caught:

            @event_type(tag="ApiTestEverything")
            class Impostor(Event):
                pass

        message = str(caught.value)
        assert f"{__name__}.Everything" in message
        assert "Impostor" in message
        assert Everything is lookup_event_type("ApiTestEverything")

    def test_duplicate_of_an_alien_tag_is_an_error(self):
        """A user type cannot take the tag of one of Alien's own variants."""
        with pytest.raises(ValueError, match=r"AlienEvent\.BuildingStack"):

            @event_type(tag="BuildingStack")
            class BuildingStack(Event):
                stack: str

        assert AlienEvent.BuildingStack is lookup_event_type("BuildingStack")

    def test_same_class_defined_again_replaces_the_registration(self):
        """Redefining a class with the same module and qualname (a reload) re-registers it."""
        first = redefine()
        second = redefine()
        assert first is not second
        assert second is lookup_event_type("ApiTestReloaded")

    def test_unresolvable_hint_is_a_type_error_naming_the_field(self):
        """A hint naming something that cannot be imported is a ``TypeError`` at class creation."""
        with pytest.raises(TypeError, match=r"Broken\.x: cannot resolve its type hint"):

            @event_type(tag="ApiTestBroken")
            class Broken(Event):
                x: "NotDefinedAnywhere"  # type: ignore[name-defined]  # noqa: F821

    def test_factory_taking_self_is_refused(self):
        """``attrs.Factory(takes_self=True)`` is refused with a ``TypeError`` naming the field."""
        with pytest.raises(TypeError, match=r"TakesSelf\.items: Factory\(takes_self=True\)"):

            @event_type(tag="ApiTestTakesSelf")
            class TakesSelf(Event):
                items: list[int] = attrs.field(
                    default=attrs.Factory(lambda self: [], takes_self=True)
                )


class TestEventClass:
    def test_instances_are_frozen(self):
        """Setting or deleting a field of an event raises ``FrozenInstanceError``."""
        event = everything()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.label = "other"  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            del event.label

    def test_instances_are_slotted(self):
        """Events have no ``__dict__``, so no stray attribute can be added."""
        event = AlienEvent.BuildingStack(stack="s")
        assert not hasattr(event, "__dict__")

    def test_equality_and_hash_by_type_and_fields(self):
        """Two events of one type with equal fields are equal and hash alike; others differ."""
        assert Base(stack="s") == Base(stack="s")
        assert hash(Base(stack="s")) == hash(Base(stack="s"))
        assert Base(stack="s") != Base(stack="t")
        assert Base(stack="s") != Derived(stack="s")

    def test_repr_shows_the_fields(self):
        """The repr names the class and every field value."""
        assert "Base(stack='s')" == repr(Base(stack="s"))

    def test_positional_arguments_follow_declaration_order(self):
        """Positional arguments fill the fields in the order they are declared."""
        assert Node("a", Node("b")) == Node(name="a", child=Node(name="b"))

    def test_keyword_only_fields_cannot_be_passed_positionally(self):
        """``kw_only`` fields are keyword-only parameters of the generated ``__init__``."""
        parameters = inspect.signature(Everything).parameters
        assert inspect.Parameter.KEYWORD_ONLY == parameters["priority"].kind
        assert inspect.Parameter.KEYWORD_ONLY == parameters["token"].kind
        assert inspect.Parameter.POSITIONAL_OR_KEYWORD == parameters["note"].kind
        with pytest.raises(TypeError):
            Everything(
                "l", 1, 0.5, True, None, (), {}, Point(0, 0), "fast", Level.LOW, 0, None, [], ()
            )  # type: ignore[call-arg]

    def test_missing_required_field_is_a_type_error(self):
        """Leaving out a field without default is a ``TypeError`` from the call itself."""
        with pytest.raises(TypeError, match="priority"):
            Everything(  # type: ignore[call-arg]
                label="l",
                count=1,
                ratio=0.5,
                flag=True,
                maybe=None,
                tags=[],
                counts={},
                point=Point(0, 0),
                mode="fast",
                level=Level.LOW,
            )

    def test_defaults_apply(self):
        """Fields left out take their defaults."""
        event = everything()
        assert 0 == event.either
        assert event.anything is None
        assert "none" == event.note
        assert "t" == event.token
        assert () == event.pair

    def test_factory_gives_each_instance_its_own_value(self):
        """A factory default is called per instance, so instances never share a mutable value."""
        first, second = everything(), everything()
        assert [] == first.numbers
        assert first.numbers is not second.numbers

    def test_a_default_is_checked_like_a_given_value(self):
        """A default of the wrong type fails when an instance uses it."""

        @event_type(tag="ApiTestBadDefault")
        class BadDefault(Event):
            size: int = "big"  # type: ignore[assignment]

        assert 3 == BadDefault(3).size
        with pytest.raises(EventValidationError, match=r"BadDefault\.size: expected int"):
            BadDefault()

    def test_validators_and_post_init_run(self):
        """attrs validators run after the type checks, and ``__attrs_post_init__`` runs last."""
        assert [2] == Checked(2).seen
        with pytest.raises(ValueError, match="must be >= 1"):
            Checked(0)
        with pytest.raises(EventValidationError, match=r"Checked\.size: expected int"):
            Checked("2")  # type: ignore[arg-type]

    def test_evolve_validates(self):
        """``attrs.evolve`` goes through the checked ``__init__``: bad values are refused."""
        event = everything()
        with pytest.raises(EventValidationError, match=r"Everything\.count: expected int"):
            attrs.evolve(event, count="2")
        assert ("x",) == attrs.evolve(event, tags=["x"]).tags
        assert 7 == attrs.evolve(event, priority=7).priority

    def test_subclass_of_an_event_type_checks_inherited_fields(self):
        """A derived event type has the base's fields first, checked like its own."""
        assert ("stack", "attempt") == tuple(a.name for a in attrs.fields(Derived))
        assert Derived("s", 2) == Derived(stack="s", attempt=2)
        with pytest.raises(EventValidationError, match=r"Derived\.stack: expected str"):
            Derived(stack=1)  # type: ignore[arg-type]
        assert "ApiTestDerived" == Derived.__event_tag__
        assert "ApiTestBase" == Base.__event_tag__

    def test_self_referencing_hint(self):
        """A field whose hint names the class itself accepts an instance and refuses others."""
        tree = Node("root", Node("leaf"))
        assert "leaf" == tree.child.name  # type: ignore[union-attr]
        with pytest.raises(EventValidationError, match=r"Node\.child: expected Node"):
            Node("root", child=Base(stack="s"))  # type: ignore[arg-type]

    def test_event_field_stores_wire_options_in_metadata(self):
        """``event_field`` records the wire name and omit-if-default flag as field metadata."""
        fields = attrs.fields_dict(Wire)
        assert {} == dict(fields["plain"].metadata)
        assert {WIRE_NAME: "theName"} == dict(fields["renamed"].metadata)
        assert {OMIT_IF_DEFAULT: True} == dict(fields["skipped"].metadata)
        assert {OMIT_IF_DEFAULT: True} == dict(fields["listed"].metadata)
        event = Wire(plain="p")
        assert ("p", "r", None, ()) == (event.plain, event.renamed, event.skipped, event.listed)


class TestValidationErrors:
    def test_error_is_a_type_error_and_an_alien_events_error(self):
        """``EventValidationError`` is both a ``TypeError`` and an ``AlienEventsError``."""
        with pytest.raises(EventValidationError) as caught:
            everything(label=1)
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, AlienEventsError)

    def test_error_names_class_field_and_reason(self):
        """The error carries the class, the field and the reason, and its message joins them."""
        with pytest.raises(EventValidationError) as caught:
            AlienEvent.BuildingStack(stack=3)  # type: ignore[arg-type]
        error = caught.value
        assert "AlienEvent.BuildingStack" == error.cls_name
        assert "stack" == error.field
        assert "expected str, got int (3)" == error.reason
        assert "AlienEvent.BuildingStack.stack: expected str, got int (3)" == str(error)

    def test_long_values_are_shortened_in_the_reason(self):
        """A bad value's repr is cut to a readable length in the message."""
        with pytest.raises(EventValidationError) as caught:
            everything(label=b"x" * 500)
        assert len(caught.value.reason) < 100
        assert caught.value.reason.endswith("...)")

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("label", 1, "expected str, got int (1)"),
            ("label", None, "expected str, got NoneType (None)"),
            ("count", True, "expected int, got bool (True)"),
            ("count", 1.0, "expected int, got float (1.0)"),
            ("count", "1", "expected int, got str ('1')"),
            ("ratio", True, "expected float, got bool (True)"),
            ("ratio", "0.5", "expected float, got str ('0.5')"),
            ("flag", 1, "expected bool, got int (1)"),
            ("flag", None, "expected bool, got NoneType (None)"),
            ("maybe", "1", "expected int or None, got str ('1')"),
            ("maybe", False, "expected int or None, got bool (False)"),
            ("tags", "ab", "expected collections.abc.Sequence[str], got str ('ab')"),
            ("tags", None, "expected collections.abc.Sequence[str], got NoneType (None)"),
            ("tags", {"a": 1}, "expected collections.abc.Sequence[str], got dict ({'a': 1})"),
            (
                "counts",
                [("a", 1)],
                "expected collections.abc.Mapping[str, int], got list ([('a', 1)])",
            ),
            ("point", (1, 2), "expected Point, got tuple ((1, 2))"),
            ("mode", "medium", "expected one of ('fast', 'slow'), got str ('medium')"),
            ("level", "low", "expected Level, got str ('low')"),
            ("either", 1.5, "expected int | str, got float (1.5)"),
            ("either", None, "expected int | str, got NoneType (None)"),
            ("numbers", "12", "expected list[int], got str ('12')"),
            ("pair", "ab", "expected tuple[str, ...], got str ('ab')"),
            ("priority", None, "expected int, got NoneType (None)"),
        ],
    )
    def test_bad_value_is_refused_with_its_reason(self, field, value, reason):
        """Each kind of hint refuses a value of the wrong type, naming class, field and reason."""
        with pytest.raises(EventValidationError) as caught:
            everything(**{field: value})
        assert ("Everything", field, reason) == (
            caught.value.cls_name,
            caught.value.field,
            caught.value.reason,
        )

    @pytest.mark.parametrize(
        ("field", "value", "where", "reason"),
        [
            ("tags", ["a", 2], "tags[1]", "expected str, got int (2)"),
            ("numbers", [1, True], "numbers[1]", "expected int, got bool (True)"),
            ("counts", {"a": "1"}, "counts['a']", "expected int, got str ('1')"),
            ("counts", {1: 1}, "counts key", "expected str, got int (1)"),
        ],
    )
    def test_bad_item_is_named_by_its_position(self, field, value, where, reason):
        """A bad item of a sequence or mapping is reported at its index, key or as the key."""
        with pytest.raises(EventValidationError) as caught:
            everything(**{field: value})
        assert (where, reason) == (caught.value.field, caught.value.reason)


class TestAcceptedValues:
    def test_float_field_accepts_an_int(self):
        """An ``int`` is a valid ``float`` (the numeric tower), and is stored as given."""
        assert 2 == everything(ratio=2).ratio

    def test_str_subclass_is_accepted(self):
        """A subclass of ``str`` passes a ``str`` check."""

        class Name(str):
            __slots__ = ()

        assert "x" == everything(label=Name("x")).label

    def test_nested_attrs_subclass_is_accepted(self):
        """A nested attrs field accepts an instance of a subclass of its class."""
        assert Point3(1, 2, 3) == everything(point=Point3(1, 2, 3)).point

    def test_sequence_is_stored_as_a_tuple_copy(self):
        """A ``Sequence`` field stores a tuple, so changing the given list changes nothing."""
        given_tags = ["a", "b"]
        event = everything(tags=given_tags)
        given_tags.append("c")
        assert ("a", "b") == event.tags

    def test_list_field_stores_a_list_copy(self):
        """A ``list[...]`` field keeps a list, but a new one, not the caller's."""
        given_numbers = [1, 2]
        event = everything(numbers=given_numbers)
        given_numbers.append(3)
        assert [1, 2] == event.numbers

    def test_sequence_hints_accept_any_sequence(self):
        """A ``list[int]`` field takes a tuple (kept as a list); a tuple field takes a list."""
        event = everything(numbers=(1, 2), pair=["a"])
        assert ([1, 2], ("a",)) == (event.numbers, event.pair)

    def test_variadic_tuple_field_checks_items(self):
        """A ``tuple[str, ...]`` field checks every item."""
        assert ("a",) == everything(pair=("a",)).pair
        with pytest.raises(EventValidationError, match=r"pair\[0\]"):
            everything(pair=(1,))

    def test_literal_accepts_each_option(self):
        """A ``Literal`` field accepts each of its options."""
        assert ["fast", "slow"] == [everything(mode=m).mode for m in ("fast", "slow")]

    def test_union_accepts_each_member(self):
        """An ``int | str`` field accepts both an int and a str."""
        assert [3, "three"] == [everything(either=v).either for v in (3, "three")]

    def test_int_literal_refuses_bool_and_float(self):
        """``Literal[1, 2]`` refuses ``True`` and ``1.0``, which only compare equal to 1."""

        @event_type(tag="ApiTestIntLiteral")
        class IntLiteral(Event):
            version: Literal[1, 2]

        assert 1 == IntLiteral(1).version
        with pytest.raises(EventValidationError):
            IntLiteral(True)  # type: ignore[arg-type]
        with pytest.raises(EventValidationError):
            IntLiteral(1.0)  # type: ignore[arg-type]


class TestValidationProperties:
    @settings(deadline=None)
    @given(st.text())
    def test_any_str_is_accepted(self, value):
        """Every ``str`` is accepted by a ``str`` field and stored unchanged."""
        assert value == everything(label=value).label

    @settings(deadline=None)
    @given(ANY_VALUE.filter(lambda v: not isinstance(v, str)))
    def test_any_non_str_is_refused(self, value):
        """Every value that is not a ``str`` is refused by a ``str`` field."""
        with pytest.raises(EventValidationError) as caught:
            everything(label=value)
        assert "label" == caught.value.field
        assert caught.value.reason.startswith("expected str, got ")

    @settings(deadline=None)
    @given(st.integers())
    def test_any_int_is_accepted(self, value):
        """Every ``int`` of any size is accepted by an ``int`` field."""
        assert value == everything(count=value).count

    @settings(deadline=None)
    @given(ANY_VALUE.filter(lambda v: not is_int(v)))
    def test_any_non_int_is_refused(self, value):
        """Every value that is not an ``int`` (``bool`` included) is refused by an ``int`` field."""
        with pytest.raises(EventValidationError, match=r"Everything\.count: expected int, got"):
            everything(count=value)

    @settings(deadline=None)
    @given(st.floats() | st.integers())
    def test_any_float_or_int_is_accepted(self, value):
        """Every float (nan and infinities too) and every int is accepted by a ``float`` field."""
        stored = everything(ratio=value).ratio
        assert value is stored or (math.isnan(value) and math.isnan(stored))

    @settings(deadline=None)
    @given(ANY_VALUE.filter(lambda v: not isinstance(v, float) and not is_int(v)))
    def test_any_non_number_is_refused_by_float(self, value):
        """Every value that is neither a float nor a non-bool int is refused by a ``float`` field."""
        with pytest.raises(EventValidationError, match=r"Everything\.ratio: expected float"):
            everything(ratio=value)

    @settings(deadline=None)
    @given(ANY_VALUE.filter(lambda v: v is not True and v is not False))
    def test_only_true_and_false_are_bools(self, value):
        """A ``bool`` field refuses everything but ``True`` and ``False`` (0 and 1 included)."""
        with pytest.raises(EventValidationError, match=r"Everything\.flag: expected bool"):
            everything(flag=value)

    @settings(deadline=None)
    @given(st.none() | st.integers())
    def test_optional_accepts_none_and_the_type(self, value):
        """An ``int | None`` field accepts ``None`` and any int."""
        assert value == everything(maybe=value).maybe

    @settings(deadline=None)
    @given(st.lists(st.text(max_size=5)) | st.tuples(st.text(max_size=5), st.text(max_size=5)))
    def test_any_sequence_of_str_is_stored_as_tuple(self, value):
        """Every list or tuple of str is accepted by a ``Sequence[str]`` field, stored as a tuple."""
        assert tuple(value) == everything(tags=value).tags

    @settings(deadline=None)
    @given(
        st.lists(st.text(max_size=3), max_size=4),
        ANY_VALUE.filter(lambda v: not isinstance(v, str)),
        st.lists(ANY_VALUE, max_size=4),
    )
    def test_first_bad_item_is_reported(self, good, bad, rest):
        """A sequence with a non-str item is refused, naming the index of the first bad item."""
        with pytest.raises(EventValidationError) as caught:
            everything(tags=[*good, bad, *rest])
        assert f"tags[{len(good)}]" == caught.value.field

    @settings(deadline=None)
    @given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=5))
    def test_any_mapping_of_str_to_int_is_accepted(self, value):
        """Every dict from str to int is accepted by a ``Mapping[str, int]`` field."""
        assert value == everything(counts=value).counts

    @settings(max_examples=50, deadline=None)
    @given(ANY_VALUE)
    def test_any_field_accepts_anything(self, value):
        """An ``Any`` field accepts every value and stores it as given."""
        assert value is everything(anything=value).anything


class TestEmitArguments:
    def test_emit_without_a_bus_returns_the_noop_handle(self):
        """With no bus reachable, ``emit`` returns the no-op handle and records nothing."""
        assert EventHandle.noop() is AlienEvent.Finished().emit()

    def test_emit_in_strict_mode_without_a_bus_raises(self):
        """In strict mode, emitting with no bus reachable raises ``NoEventBusContext``."""
        set_strict(True)
        with pytest.raises(NoEventBusContext):
            AlienEvent.Finished().emit()

    @pytest.mark.parametrize("state", ["started", None, 1])
    def test_state_must_be_an_event_state_without_a_bus(self, state):
        """A state that is not an ``EventState`` is a ``TypeError`` even with no bus."""
        with pytest.raises(TypeError, match="state must be an EventState"):
            AlienEvent.Finished().emit(state)

    def test_state_must_be_an_event_state_with_a_bus(self, bus, recorder):
        """A state that is not an ``EventState`` is a ``TypeError`` and nothing is emitted."""
        with bus, pytest.raises(TypeError, match="state must be an EventState"):
            AlienEvent.Finished().emit("started")  # type: ignore[arg-type]
        assert [] == recorder.changes

    def test_parent_of_a_wrong_type_is_a_type_error_with_a_bus(self, bus, recorder):
        """A parent that is neither a handle, a str nor ``None`` is a ``TypeError``."""
        with bus, pytest.raises(TypeError, match="parent must be an EventHandle"):
            AlienEvent.Finished().emit(parent=3)  # type: ignore[arg-type]
        assert [] == recorder.changes

    def test_parent_of_a_wrong_type_is_a_type_error_without_a_bus(self):
        """A parent of the wrong type is a ``TypeError`` even with no bus, as a bad state is."""
        with pytest.raises(TypeError, match="parent must be an EventHandle"):
            AlienEvent.Finished().emit(parent=3)  # type: ignore[arg-type]

    def test_error_of_a_wrong_type_is_refused(self, bus, recorder):
        """An ``error`` that is not an ``AlienError`` is a ``TypeError`` and nothing is emitted."""
        with bus, pytest.raises(TypeError):
            AlienEvent.Finished().emit(EventState.FAILED, error=5)  # type: ignore[arg-type]
        assert [] == recorder.changes

    def test_emit_with_state_and_error(self, bus, recorder):
        """``emit(FAILED, error=...)`` creates the event failed with that error."""
        error = AlienError(code="E", message="m")
        with bus:
            handle = AlienEvent.Finished().emit(EventState.FAILED, error=error)
        [created] = recorder.changes
        assert isinstance(created, Created)
        assert (handle.id, EventState.FAILED, error) == (created.id, created.state, created.error)

    def test_emit_with_state(self, bus, recorder):
        """``emit_with_state`` creates the event in the given state with no parent."""
        with bus:
            AlienEvent.Finished().emit_with_state(EventState.STARTED)
        [created] = recorder.changes
        assert (EventState.STARTED, None) == (created.state, created.parent_id)

    def test_emit_with_parent_takes_a_handle_or_an_id(self, bus, recorder):
        """``emit_with_parent`` takes a handle (its id is used) or an id string."""
        with bus:
            parent = AlienEvent.Finished().emit()
            by_handle = AlienEvent.Finished().emit_with_parent(parent)
            by_id = AlienEvent.Finished().emit_with_parent("some-id")
        assert (parent.id, "some-id") == (by_handle.parent_id, by_id.parent_id)
        assert [None, parent.id, "some-id"] == [c.parent_id for c in recorder.changes]

    def test_explicit_parent_wins_over_the_scope(self, bus, recorder):
        """Inside a scope, an explicit parent is used instead of the scope's event."""
        with bus, AlienEvent.Finished().in_scope() as scope:
            ambient = AlienEvent.BuildingStack(stack="a").emit()
            explicit = AlienEvent.BuildingStack(stack="e").emit(parent="elsewhere")
        assert (scope.id, "elsewhere") == (ambient.parent_id, explicit.parent_id)
