"""
Tests of the field checks (``alien_events_api._validation``).

Hints checked inside containers, rarer kinds of hint, ``init=False`` fields and inherited fields.
"""

from collections.abc import Mapping
from typing import Annotated, TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import Event, EventValidationError, event_type

T = TypeVar("T")

# -- test-only types ----------------------------------------------------------------------------


@event_type(tag="ApiValidationNested")
class Nested(Event):
    """Scalars that are only checked by their own check inside a container."""

    ratios: list[float] = attrs.field(factory=list)
    switches: Mapping[str, bool] = attrs.field(factory=dict)


@event_type(tag="ApiValidationHints")
class Hints(Event):
    """One field per rarer kind of hint."""

    count: Annotated[int, "a count"] = 0
    nothing: None = None
    boxed: T = None  # type: ignore[valid-type]
    pair: tuple[int, str] = (0, "")


@event_type(tag="ApiValidationAnnotatedSequence")
class AnnotatedSequence(Event):
    """A sequence field whose hint is wrapped in ``Annotated``."""

    tags: Annotated[tuple[str, ...], "labels"] = ()


_made: list[int] = []


def _make_id() -> str:
    _made.append(1)
    return f"made-{len(_made)}"


@event_type(tag="ApiValidationNotInit")
class NotInit(Event):
    """Fields that ``__init__`` does not take: a default and a factory."""

    name: str
    kind: str = attrs.field(init=False, default="deploy")
    serial: str = attrs.field(init=False, factory=_make_id)


@event_type(tag="ApiValidationComputed")
class Computed(Event):
    """An ``init=False`` field without default, set by ``__attrs_post_init__`` (an attrs idiom)."""

    a: int
    b: int
    total: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "total", self.a + self.b)


@attrs.define(slots=False)
class Located:
    """A plain (not slotted) attrs class of shared fields."""

    region: str


@event_type(tag="ApiValidationDeployed")
class Deployed(Located, Event):
    """An event that inherits a field from a class without slots."""

    name: str


NOT_NUMBERS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.binary(max_size=3), st.lists(st.integers())
)
NOT_BOOLS = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3))
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.builds(object),
)


# -- tests --------------------------------------------------------------------------------------


class TestScalarsInsideContainers:
    @settings(deadline=None)
    @given(st.lists(st.floats() | st.integers(), max_size=5))
    def test_list_of_float_accepts_floats_and_ints(self, values):
        """A ``list[float]`` field accepts any list of floats and ints, stored as a list copy."""
        stored = Nested(ratios=values).ratios
        assert list is type(stored)
        assert stored is not values
        assert [id(v) for v in values] == [id(v) for v in stored]

    @settings(deadline=None)
    @given(st.lists(st.floats(allow_nan=False), max_size=3), NOT_NUMBERS)
    def test_list_of_float_refuses_a_non_number_item(self, good, bad):
        """A ``list[float]`` item that is neither a float nor a non-bool int is refused at its index."""
        with pytest.raises(EventValidationError) as caught:
            Nested(ratios=[*good, bad])
        assert (f"ratios[{len(good)}]", "expected float") == (
            caught.value.field,
            caught.value.reason.split(",")[0],
        )

    @settings(deadline=None)
    @given(st.dictionaries(st.text(max_size=3), st.booleans(), max_size=4))
    def test_mapping_of_bool_accepts_bools(self, value):
        """A ``Mapping[str, bool]`` field accepts any dict of ``True`` and ``False`` values."""
        assert value == Nested(switches=value).switches

    @settings(deadline=None)
    @given(NOT_BOOLS)
    def test_mapping_of_bool_refuses_anything_but_true_and_false(self, value):
        """A ``Mapping[str, bool]`` value that is not ``True`` or ``False`` (0 and 1 too) is refused."""
        with pytest.raises(EventValidationError) as caught:
            Nested(switches={"on": value})
        assert ("switches['on']", "expected bool") == (
            caught.value.field,
            caught.value.reason.split(",")[0],
        )


class TestRarerHints:
    @settings(deadline=None)
    @given(st.integers())
    def test_annotated_int_accepts_ints(self, value):
        """An ``Annotated[int, ...]`` field accepts every int, stored unchanged."""
        assert value == Hints(count=value).count

    def test_annotated_is_checked_as_its_inner_type(self):
        """An ``Annotated[int, ...]`` field is checked as an ``int`` field: a str is refused."""
        with pytest.raises(EventValidationError) as caught:
            Hints(count="3")
        assert "Hints.count: expected int, got str ('3')" == str(caught.value)

    def test_none_hint_accepts_none(self):
        """A field typed ``None`` accepts ``None``."""
        assert Hints(nothing=None).nothing is None

    @settings(deadline=None)
    @given(ANYTHING.filter(lambda v: v is not None))
    def test_none_hint_refuses_everything_else(self, value):
        """A field typed ``None`` refuses every other value (``0``, ``False`` and ``""`` included)."""
        with pytest.raises(EventValidationError) as caught:
            Hints(nothing=value)
        assert ("nothing", "expected one of (None,)") == (
            caught.value.field,
            caught.value.reason.split(", got")[0],
        )

    @settings(deadline=None)
    @given(ANYTHING)
    def test_hint_that_is_not_a_class_accepts_anything(self, value):
        """A field whose hint is neither a class nor a known form (a ``TypeVar``) takes any value."""
        assert value is Hints(boxed=value).boxed

    @pytest.mark.parametrize("value", [(1, "a"), [1, "a"]])
    def test_fixed_length_tuple_takes_a_tuple_or_a_list_and_stores_a_tuple(self, value):
        """A ``tuple[int, str]`` field takes a tuple or a list of two items and stores a tuple."""
        event = Hints(pair=value)
        assert (1, "a") == event.pair
        assert tuple is type(event.pair)
        assert hash(Hints(pair=(1, "a"))) == hash(event)

    @pytest.mark.parametrize("value", ["1a", None, {1: "a"}, 7])
    def test_fixed_length_tuple_refuses_what_is_not_a_sequence(self, value):
        """A ``tuple[int, str]`` field refuses a string, a mapping or a scalar, naming the field."""
        with pytest.raises(EventValidationError) as caught:
            Hints(pair=value)
        assert ("pair", "expected tuple[int, str]") == (
            caught.value.field,
            caught.value.reason.split(", got")[0],
        )

    @pytest.mark.parametrize("value", [(), (1,), (1, "a", "b")])
    def test_fixed_length_tuple_refuses_another_length(self, value):
        """A ``tuple[int, str]`` field refuses fewer or more than two items, saying how many."""
        with pytest.raises(EventValidationError) as caught:
            Hints(pair=value)
        assert ("pair", "expected tuple[int, str] (2 items)") == (
            caught.value.field,
            caught.value.reason.split(", got")[0],
        )

    @pytest.mark.parametrize(("value", "field"), [(("a", "a"), "pair[0]"), ((1, 2), "pair[1]")])
    def test_fixed_length_tuple_checks_each_item_against_its_own_hint(self, value, field):
        """A ``tuple[int, str]`` field checks item 0 as an int and item 1 as a str, naming the index."""
        with pytest.raises(EventValidationError) as caught:
            Hints(pair=value)
        assert field == caught.value.field

    def test_annotated_sequence_checks_its_items(self):
        """An ``Annotated[tuple[str, ...], ...]`` field refuses a bad item, naming its index."""
        with pytest.raises(EventValidationError) as caught:
            AnnotatedSequence(tags=["a", 2])
        assert "tags[1]" == caught.value.field

    def test_annotated_sequence_is_stored_as_a_tuple(self):
        """An ``Annotated[tuple[str, ...], ...]`` field stores a given list as a tuple, like the bare hint."""
        event = AnnotatedSequence(tags=["a", "b"])
        assert ("a", "b") == event.tags
        assert hash(event) == hash(AnnotatedSequence(tags=("a", "b")))


@event_type(tag="ApiValidationComputedChecked")
class ComputedChecked(Event):
    """An ``init=False`` field without default, set by ``__attrs_post_init__``, with a validator."""

    a: int
    total: int = attrs.field(init=False, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "total", self.a * 2)


class TestFieldsNotInInit:
    def test_a_field_set_by_post_init_is_checked_and_validated_after_it(self):
        """A field ``__attrs_post_init__`` sets is checked against its hint and its validator, after it runs."""
        assert 4 == ComputedChecked(2).total
        with pytest.raises(ValueError, match="'total' must be >= 0: -2"):
            ComputedChecked(-1)

    def test_default_is_set_without_being_a_parameter(self):
        """An ``init=False`` field with a default gets it, and ``__init__`` does not take it."""
        assert "deploy" == NotInit("n").kind
        with pytest.raises(TypeError, match="kind"):
            NotInit("n", kind="other")  # type: ignore[call-arg]

    def test_factory_runs_once_per_instance(self):
        """An ``init=False`` field with a factory gets a new value from it for each instance."""
        first, second = NotInit("a"), NotInit("b")
        assert first.serial != second.serial
        assert first.serial.startswith("made-")

    def test_default_is_checked_against_the_hint(self):
        """An ``init=False`` default of the wrong type is refused when an instance is made."""

        @event_type(tag="ApiValidationBadNotInit")
        class BadNotInit(Event):
            kind: int = attrs.field(init=False, default="deploy")

        with pytest.raises(EventValidationError, match=r"BadNotInit\.kind: expected int"):
            BadNotInit()

    def test_field_without_default_can_be_set_by_post_init(self):
        """An ``init=False`` field without default can be computed in ``__attrs_post_init__``, as with attrs."""
        assert 3 == Computed(1, 2).total


class TestFieldsInheritedFromAClassWithoutSlots:
    def test_inherited_field_is_set(self):
        """A field inherited from a plain attrs base is set by the event's ``__init__``."""
        event = Deployed("eu", "web")
        assert ("eu", "web") == (event.region, event.name)
        assert Deployed("eu", "web") == event

    def test_inherited_field_is_checked(self):
        """A field inherited from a plain attrs base is checked against its hint."""
        with pytest.raises(EventValidationError, match=r"Deployed\.region: expected str"):
            Deployed(3, "web")

    def test_inherited_field_is_frozen(self):
        """A field inherited from a plain attrs base cannot be assigned after construction."""
        event = Deployed("eu", "web")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.region = "us"  # type: ignore[misc]
        assert "eu" == event.region
