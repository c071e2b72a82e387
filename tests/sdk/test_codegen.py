"""
The per-class wire functions generated for user event types (``_codegen``), through the wire API.

Field values are turned into JSON by their type hint: free-form values (``Any``, mappings,
``Annotated`` ones) are copied, enums travel by value, nested attrs classes are checked against
their hints on the way in, fields left out of ``__init__`` are written but never read, and
anything a reader cannot accept (a validator's refusal, a value that is not JSON at all) is a
``WireFormatError`` naming where.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alien_events_api import AlienError, Event, EventState, event_type
from alien_events_sdk import (
    EventBus,
    RecordingHandler,
    WireFormatError,
    dumps,
    from_dict,
    loads,
    to_dict,
)


class Colour(enum.Enum):
    """A user enum used as an event field: it travels as its value."""

    RED = "red"
    GREEN = "green"


@attrs.frozen
class Limits:
    """A plain attrs class (not an event): the reader checks its fields against the hints."""

    name: str
    soft: int = 0
    hard: int = 100


@event_type(tag="codegen-test.Configured")
class Configured(Event):
    """A user event with free-form, annotated, enum, nested and computed fields."""

    payload: Any
    settings: Annotated[dict[str, Any], "free-form settings"]
    colour: Colour = Colour.RED
    limits: Limits | None = None
    schema_version: int = attrs.field(init=False, default=2)


@event_type(tag="codegen-test.Retried")
class Retried(Event):
    """A user event whose field has an attrs validator (attempts start at 1)."""

    attempt: int = attrs.field(validator=attrs.validators.ge(1))


@event_type(tag="codegen-test.Measured")
class Measured(Event):
    """A user event whose field is a union of two JSON types."""

    value: int | str


@attrs.frozen
class Disk:
    """One kind of backup medium."""

    size_bytes: int


@attrs.frozen
class Tape:
    """The other kind of backup medium."""

    length_metres: float


@event_type(tag="codegen-test.BackedUp")
class BackedUp(Event):
    """A user event whose field is a union of two attrs classes."""

    medium: Disk | Tape


@event_type(tag="codegen-test.Labelled")
class Labelled(Event):
    """A user event with a fixed-length tuple holding an attrs class and a string."""

    item: tuple[Disk, str]


class NotRegistered(Event):
    """An Event subclass someone forgot to decorate with ``@event_type``."""


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)


def containers(value: Any) -> list[int]:
    """Return the ids of every dict and list inside a value (itself included)."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(id(item))
            stack.extend(item)
    return found


def created_doc(event_doc: Any) -> dict[str, Any]:
    """Wrap an event document in a Created change document."""
    return {
        "type": "created",
        "id": "e-1",
        "parentId": None,
        "createdAt": "2026-11-28T17:09:46.305176Z",
        "event": event_doc,
        "state": "none",
    }


# -- free-form values -------------------------------------------------------------------------


class TestFreeFormValues:
    @given(payload=JSON_VALUES, settings=st.dictionaries(st.text(max_size=6), JSON_VALUES))
    def test_any_and_annotated_mapping_fields_are_written_as_copies(self, payload, settings):
        """``Any`` and ``Annotated[dict, ...]`` fields are written equal to the value but share no dict or list with the event."""
        event = Configured(payload=payload, settings=settings)

        doc = to_dict(event)

        assert (payload, settings) == (doc["payload"], doc["settings"])
        assert set() == set(containers(doc)) & set(containers([payload, settings]))

    def test_editing_what_to_dict_gave_leaves_the_event_alone(self):
        """Editing the nested dicts and lists ``to_dict`` returned changes neither the event nor the next ``to_dict``."""
        event = Configured(payload={"steps": [1, 2]}, settings={"retry": {"max": 3}})

        first = to_dict(event)
        first["payload"]["steps"].append(3)
        first["settings"]["retry"]["max"] = 9

        assert {"steps": [1, 2]} == event.payload
        assert {"retry": {"max": 3}} == event.settings
        assert {"steps": [1, 2]} == to_dict(event)["payload"]

    @given(payload=JSON_VALUES, settings=st.dictionaries(st.text(max_size=6), JSON_VALUES))
    def test_free_form_fields_round_trip_through_text(self, payload, settings):
        """An event with ``Any`` and ``Annotated`` mapping fields reads back equal from its JSON text."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            Configured(payload=payload, settings=settings).emit()

        (change,) = recorder.changes
        assert change == loads(dumps(change))


# -- enums, nested classes and computed fields ------------------------------------------------


class TestTypedValues:
    def test_an_enum_field_is_written_as_its_value_and_read_back_as_the_member(self):
        """An enum field travels as the member's value and reads back as the member itself."""
        event = Configured(payload=None, settings={}, colour=Colour.GREEN)

        doc = to_dict(event)

        assert "green" == doc["colour"]
        assert Colour.GREEN is from_dict(doc, Configured).colour

    def test_an_unknown_enum_value_names_the_field(self):
        """A value that is not one of the enum's is a WireFormatError at the field, naming the enum."""
        doc = {**to_dict(Configured(payload=None, settings={})), "colour": "blue"}

        with pytest.raises(WireFormatError) as info:
            from_dict(doc, Event)

        assert "colour" == info.value.path
        assert "Colour" in info.value.reason
        assert "'blue'" in info.value.reason

    def test_a_field_left_out_of_init_is_written_but_not_read(self):
        """A field with ``init=False`` is written out, and on the way in its key is ignored for the default."""
        event = Configured(payload=1, settings={})

        doc = to_dict(event)

        assert 2 == doc["schemaVersion"]
        read = from_dict({**doc, "schemaVersion": 99}, Configured)
        assert 2 == read.schema_version
        assert event == read

    def test_a_nested_plain_class_fills_keys_left_out_from_its_defaults(self):
        """A nested plain attrs class missing its defaulted keys reads them as the defaults."""
        doc = {**to_dict(Configured(payload=None, settings={})), "limits": {"name": "cpu"}}

        assert Limits("cpu", 0, 100) == from_dict(doc, Configured).limits

    def test_a_nested_plain_class_checks_the_keys_it_is_given(self):
        """A nested plain attrs class refuses a wrongly typed value, naming the nested key."""
        doc = {
            **to_dict(Configured(payload=None, settings={})),
            "limits": {"name": "cpu", "hard": "100"},
        }

        with pytest.raises(WireFormatError) as info:
            from_dict(doc, Event)

        assert "limits.hard" == info.value.path
        assert "expected int" in info.value.reason


# -- unions ---------------------------------------------------------------------------------


class TestUnions:
    @pytest.mark.parametrize("value", [7, "seven"])
    def test_a_union_of_json_types_is_written_as_the_value(self, value):
        """A field typed ``int | str`` is written as whichever value it holds."""
        event = Measured(value=value)

        assert {"type": "codegen-test.Measured", "value": value} == to_dict(event)
        assert to_dict(event) == json.loads(dumps(event))

    @pytest.mark.parametrize("value", [7, "seven"])
    def test_a_union_of_json_types_reads_back(self, value):
        """A field typed ``int | str`` reads back from what the SDK wrote for it."""
        event = Measured(value=value)

        assert event == from_dict(to_dict(event), Measured)

    def test_an_attrs_class_in_a_union_is_written_with_camel_case_keys(self):
        """A nested attrs class held by a union field is written with camelCase keys and reads back."""
        event = BackedUp(medium=Disk(size_bytes=5))

        assert {"type": "codegen-test.BackedUp", "medium": {"sizeBytes": 5}} == to_dict(event)
        assert event == from_dict(to_dict(event), BackedUp)

    def test_a_union_value_is_read_as_the_first_alternative_that_takes_it(self):
        """A ``Disk | Tape`` field reads a tape's object as a Tape (a Disk would need sizeBytes)."""
        event = BackedUp(medium=Tape(length_metres=2.5))

        assert {"lengthMetres": 2.5} == to_dict(event)["medium"]
        assert event == from_dict(to_dict(event), BackedUp)

    def test_a_value_no_alternative_takes_names_the_union(self):
        """A value no alternative of the union takes is a WireFormatError at the field, naming them."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "codegen-test.BackedUp", "medium": {"colour": "red"}}, Event)

        assert ("medium", "expected Disk | Tape, got an object") == (
            info.value.path,
            info.value.reason,
        )

    @pytest.mark.parametrize("value", [7, "seven"])
    def test_a_union_of_json_types_refuses_another_json_type(self, value):
        """A field typed ``int | str`` refuses a JSON array, naming the field."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "codegen-test.Measured", "value": [value]}, Event)

        assert "value" == info.value.path


@event_type(tag="codegen-test.Mixed")
class Mixed(Event):
    """A user event whose union mixes a generic alias, an annotated class and a literal."""

    value: list[int] | Annotated[Disk, "a disk"] | Literal["none"]


@event_type(tag="codegen-test.Annotated")
class AnnotatedDisk(Event):
    """A user event whose attrs-class field carries ``Annotated`` metadata."""

    disk: Annotated[Disk, "the backup disk"]


@event_type(tag="codegen-test.Noted")
class Noted(Event):
    """A user event with an optional, annotated free-form mapping."""

    meta: Annotated[dict[str, Any], "free-form"] | None = None


class TestUnionsOfOtherKinds:
    def test_an_optional_annotated_mapping_is_copied_when_written(self):
        """``Annotated[dict, ...] | None`` is written as a copy (no aliasing) and reads back equal."""
        event = Noted(meta={"tags": ["a"]})
        written = to_dict(event)

        assert {"tags": ["a"]} == written["meta"]
        written["meta"]["tags"].append("b")
        assert {"tags": ["a"]} == event.meta
        assert event == from_dict(json.loads(dumps(event)), Event)

    def test_an_annotated_attrs_class_field_is_written_like_the_bare_class(self):
        """An ``Annotated[Disk, ...]`` field is written with camelCase keys and reads back."""
        event = AnnotatedDisk(disk=Disk(size_bytes=4))

        assert {"sizeBytes": 4} == to_dict(event)["disk"]
        assert event == from_dict(json.loads(dumps(event)), Event)

    @pytest.mark.parametrize(
        ("value", "written"),
        [([1, 2], [1, 2]), (Disk(size_bytes=9), {"sizeBytes": 9}), ("none", "none")],
    )
    def test_each_alternative_is_written_and_read_back(self, value, written):
        """A list, an annotated attrs class or a literal in one union each write and read back."""
        event = Mixed(value=value)

        assert written == to_dict(event)["value"]
        assert event == from_dict(json.loads(dumps(event)), Event)


class TestFixedLengthTuples:
    def test_each_item_is_written_and_read_by_its_own_hint(self):
        """A ``tuple[Disk, str]`` field is an array of a camelCase object and a string, read back."""
        event = Labelled(item=(Disk(size_bytes=3), "spare"))

        assert [{"sizeBytes": 3}, "spare"] == to_dict(event)["item"]
        assert event == from_dict(json.loads(dumps(event)), Event)

    @pytest.mark.parametrize("item", [[{"sizeBytes": 3}], [{"sizeBytes": 3}, "a", "b"]])
    def test_another_number_of_items_is_refused(self, item):
        """An array of the wrong length for a ``tuple[Disk, str]`` field is a WireFormatError saying so."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "codegen-test.Labelled", "item": item}, Event)

        assert ("item", f"expected an array of 2 items, got {len(item)}") == (
            info.value.path,
            info.value.reason,
        )


# -- what cannot be written or read -----------------------------------------------------------


class TestRefusals:
    def test_an_undecorated_event_subclass_cannot_be_written(self):
        """Writing an Event subclass without ``@event_type`` is a TypeError saying to decorate it."""
        with pytest.raises(TypeError) as info:
            to_dict(NotRegistered())

        assert "NotRegistered is not a registered event type: decorate it with @event_type" == str(
            info.value
        )
        with pytest.raises(TypeError):
            dumps(NotRegistered())

    def test_a_validator_refusal_is_a_wire_format_error_at_the_document(self):
        """A value an attrs validator refuses is a WireFormatError at ``<document>`` carrying the validator's message."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "codegen-test.Retried", "attempt": 0}, Event)

        assert "<document>" == info.value.path
        assert "'attempt' must be >= 1: 0" == info.value.reason

    def test_a_validator_refusal_inside_a_change_names_the_event(self):
        """Inside a change, a value an attrs validator refuses is a WireFormatError at ``event``."""
        doc = created_doc({"type": "codegen-test.Retried", "attempt": -1})

        with pytest.raises(WireFormatError) as info:
            from_dict(doc)

        assert "event" == info.value.path
        assert "'attempt' must be >= 1: -1" == info.value.reason

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            (b"e-1", "bytes"),
            (("e", "1"), "tuple"),
            (datetime(2026, 1, 1, tzinfo=UTC), "datetime"),
            ({"e", "1"}, "set"),
        ],
    )
    def test_python_values_that_are_not_json_are_named_by_their_type(self, value, kind):
        """A Python value that no JSON parser gives is refused with its type's name."""
        with pytest.raises(WireFormatError) as info:
            from_dict({**created_doc({"type": "Finished"}), "id": value})
        assert ("id", f"expected a non-empty string, got {kind}") == (
            info.value.path,
            info.value.reason,
        )

        with pytest.raises(WireFormatError) as info:
            from_dict(value, AlienError)
        assert ("<document>", f"expected a JSON object, got {kind}") == (
            info.value.path,
            info.value.reason,
        )

    def test_a_failed_state_read_from_python_values_is_checked_too(self):
        """A ``failed`` state whose error is a tuple, not an object, is refused naming the error."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"failed": {"error": ("BOOM",)}}, EventState)

        assert ("failed.error", "expected a JSON object, got tuple") == (
            info.value.path,
            info.value.reason,
        )
