"""
``json_schema()``, ``change_schema()`` and ``event_schema()`` (issue 3, section 1).

Our schema is a valid draft 2020-12 schema and, for Alien's 31 event types, gives the same
verdict as Alien's own generated schemas on the golden examples, on systematic mutations of
them and on everything the SDK produces. User-defined event types appear by their tag.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import attrs
import jsonschema
import pytest
from wire_samples import (
    CHAINED_ERROR,
    EXAMPLES,
    MINIMAL,
    REALISTIC,
    load_alien_schema,
    produced_changes,
)

from alien_events_api import (
    ALIEN_EVENT_TYPES,
    AlienError,
    AlienEvent,
    Event,
    EventState,
    StateChanged,
    event_field,
    event_type,
)
from alien_events_sdk import (
    WireFormatError,
    change_schema,
    event_schema,
    from_dict,
    json_schema,
    to_dict,
)

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ALIEN_TAGS = [cls.__event_tag__ for cls in ALIEN_EVENT_TYPES]

ALIEN_CHANGE = jsonschema.Draft7Validator(load_alien_schema("eventChange"))
ALIEN_EVENT = jsonschema.Draft7Validator(load_alien_schema("alienEvent"))
ALIEN_STATE = jsonschema.Draft7Validator(load_alien_schema("eventState"))
ALIEN_ERROR = jsonschema.Draft7Validator(load_alien_schema("alienError"))

# Kinds of JSON value a field is changed to (each one that differs from the field's own).
OTHER_KINDS: tuple[Any, ...] = (None, True, 7, -1, 1.5, "text", [], {})


@attrs.frozen
class Coordinates:
    """A nested attrs class inside a user event."""

    lat: float
    lon: float


@event_type(tag="schema-test.Surveyed")
class Surveyed(Event):
    """A site was surveyed (a user event type for the schema)."""

    site_name: str
    readings: Sequence[int]
    tags: Mapping[str, str]
    where: Coordinates | None = None
    quality: Literal["low", "high"] = "high"
    operator_id: str = event_field(default="", wire_name="operator", omit_if_default=True)


@event_type(tag="schema-test.Sampled")
class Sampled(Event):
    """A sensor was sampled (a user event type with annotated and optional free-form fields)."""

    rate: Annotated[float, "samples per second"]
    labels: Annotated[Mapping[str, str], "free-form labels"]
    note: Any | None = None


@event_type(tag="schema-test.Measured")
class Measured(Event):
    """A measurement (a user event type with a fixed-length tuple and overlapping unions)."""

    point: tuple[int, str]
    ratio: float | int = 1


def ours() -> jsonschema.Draft202012Validator:
    """A validator of our whole wire format, built now (it includes every registered type)."""
    return jsonschema.Draft202012Validator(json_schema())


def ours_for(definition: str) -> jsonschema.Draft202012Validator:
    """A validator of one of our ``$defs`` (AlienEvent, EventState, AlienError)."""
    schema = json_schema()
    return jsonschema.Draft202012Validator(
        {"$schema": DRAFT_2020_12, "$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    )


def created(event_doc: Any) -> dict[str, Any]:
    """Wrap an event document in a Created change."""
    return {
        "type": "created",
        "id": "43d9b9cd-62a2-4eb8-b2c9-d6325da39208",
        "parentId": None,
        "createdAt": "2026-11-28T17:09:46.305176Z",
        "event": event_doc,
        "state": "none",
    }


OPAQUE_KEYS = frozenset({"nextState", "source"})


def where(path: tuple[Any, ...], key: Any) -> str:
    return ".".join(map(str, (*path, key)))


def retyped(key: Any, value: Any):
    """Yield the values a field is changed to: each kind of JSON value it does not hold."""
    for other in OTHER_KINDS:
        same = type(other) is type(value) and other == value
        # Another object as nextState changes only what is inside it, which is not ours to check.
        if not same and not ("nextState" == key and isinstance(other, dict)):
            yield other


def mutations(doc: Any, path: tuple[Any, ...] = ()):
    """
    Yield (description, mutated copy) for every object and array in ``doc``.

    Each key is dropped, its value changed to every other kind of JSON value, and an unknown
    key is added. ``nextState`` (an opaque object for us) and an error's ``source`` (left
    unconstrained by Alien's schema) are mutated as a whole but not inside.
    """
    if isinstance(doc, list):
        for index, value in enumerate(doc):
            for other in retyped(index, value):
                changed = copy.deepcopy(doc)
                changed[index] = other
                yield f"{where(path, index)} = {other!r}", changed
        return
    if not isinstance(doc, dict):
        return
    for key, value in doc.items():
        dropped = copy.deepcopy(doc)
        del dropped[key]
        yield f"{where(path, key)} dropped", dropped
        if "source" == key:
            continue  # Alien's schema accepts anything there: see the test of it below
        for other in retyped(key, value):
            changed = copy.deepcopy(doc)
            changed[key] = other
            yield f"{where(path, key)} = {other!r}", changed
    extended = copy.deepcopy(doc)
    extended["unknownKey"] = 1
    yield f"{'.'.join(map(str, path)) or '<root>'} + unknownKey", extended
    for key, value in doc.items():
        if key in OPAQUE_KEYS:
            continue
        for description, inner in mutations(value, (*path, key)):
            mutated = copy.deepcopy(doc)
            mutated[key] = inner
            yield description, mutated


def verdict_differences(
    alien: jsonschema.Draft7Validator,
    our: jsonschema.Draft202012Validator,
    documents: list[tuple[str, Any]],
) -> list[str]:
    """Return the documents (with their mutations) on which the two validators disagree."""
    differences = []
    for name, doc in documents:
        for description, candidate in [("as is", doc), *mutations(doc)]:
            alien_valid, our_valid = alien.is_valid(candidate), our.is_valid(candidate)
            if alien_valid != our_valid:
                differences.append(f"{name} {description}: Alien {alien_valid}, ours {our_valid}")
    return differences


CHANGE_EXAMPLES = [(e["name"], e["json"]) for e in EXAMPLES if "change" == e["kind"]]
EVENT_EXAMPLES = [(e["name"], e["json"]) for e in EXAMPLES if "event" == e["kind"]]


class TestSchemaIsValid:
    def test_json_schema_is_a_valid_draft_2020_12_schema(self):
        """``json_schema()`` declares draft 2020-12 and passes that metaschema."""
        schema = json_schema()
        assert DRAFT_2020_12 == schema["$schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert jsonschema.Draft202012Validator is jsonschema.validators.validator_for(schema)

    def test_json_schema_is_the_change_schema(self):
        """The whole wire format's schema is the change envelope with its definitions."""
        assert change_schema() == json_schema()
        assert {"AlienEvent", "EventState", "AlienError"} <= set(json_schema()["$defs"])

    def test_event_schema_is_valid_on_its_own(self):
        """``event_schema()`` is a valid schema too, and it is the AlienEvent definition."""
        jsonschema.Draft202012Validator.check_schema({"$schema": DRAFT_2020_12, **event_schema()})
        assert event_schema() == json_schema()["$defs"]["AlienEvent"]

    def test_schema_is_plain_json(self):
        """The schema survives a JSON round trip unchanged (no Python objects inside)."""
        schema = json_schema()
        assert schema == json.loads(json.dumps(schema))

    def test_every_alien_type_has_one_alternative(self):
        """``event_schema()`` has exactly one alternative per registered tag, the 31 among them."""
        tags = [alt["properties"]["type"]["enum"][0] for alt in event_schema()["oneOf"]]
        assert len(tags) == len(set(tags))
        assert set(ALIEN_TAGS) <= set(tags)


class TestSameVerdictAsAlien:
    def test_mutations_give_both_verdicts(self):
        """The mutations are not vacuous: among them are documents valid and invalid for Alien."""
        _, doc = CHANGE_EXAMPLES[1]
        verdicts = [ALIEN_CHANGE.is_valid(candidate) for _, candidate in mutations(doc)]
        assert len(verdicts) > 100
        assert {True, False} == set(verdicts)

    @pytest.mark.parametrize(("name", "doc"), CHANGE_EXAMPLES, ids=[n for n, _ in CHANGE_EXAMPLES])
    def test_change_examples_are_valid_for_both(self, name, doc):
        """Every golden change is valid for Alien's schema and for ours."""
        assert ALIEN_CHANGE.is_valid(doc)
        assert [] == [e.message for e in ours().iter_errors(doc)]

    @pytest.mark.parametrize(("name", "doc"), EVENT_EXAMPLES, ids=[n for n, _ in EVENT_EXAMPLES])
    def test_event_examples_are_valid_for_both(self, name, doc):
        """Every golden event is valid alone and inside a change, for both schemas."""
        assert ALIEN_EVENT.is_valid(doc)
        assert ours_for("AlienEvent").is_valid(doc)
        assert ALIEN_CHANGE.is_valid(created(doc))
        assert ours().is_valid(created(doc))

    @pytest.mark.parametrize(("name", "doc"), CHANGE_EXAMPLES, ids=[n for n, _ in CHANGE_EXAMPLES])
    def test_mutated_change_examples_get_the_same_verdict(self, name, doc):
        """Dropping, retyping or adding any key of a golden change: both schemas agree."""
        assert [] == verdict_differences(ALIEN_CHANGE, ours(), [(name, doc)])

    @pytest.mark.parametrize(("name", "doc"), EVENT_EXAMPLES, ids=[n for n, _ in EVENT_EXAMPLES])
    def test_mutated_event_examples_get_the_same_verdict(self, name, doc):
        """Mutations of each golden event, alone and inside a change: both schemas agree."""
        assert [] == verdict_differences(ALIEN_EVENT, ours_for("AlienEvent"), [(name, doc)])
        assert [] == verdict_differences(ALIEN_CHANGE, ours(), [(name, created(doc))])

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_mutated_realistic_events_get_the_same_verdict(self, cls):
        """Mutations of each of the 31 types (optional fields set and unset): both schemas agree."""
        documents = [
            ("realistic", to_dict(REALISTIC[cls])),
            ("minimal", to_dict(MINIMAL[cls])),
        ]
        assert [] == verdict_differences(ALIEN_EVENT, ours_for("AlienEvent"), documents)

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_produced_changes_are_valid_for_both(self, cls):
        """Every change the SDK produces for each of the 31 types is valid for both schemas."""
        validator = ours()
        for change in produced_changes(REALISTIC[cls], MINIMAL[cls]):
            doc = to_dict(change)
            assert ALIEN_CHANGE.is_valid(doc), doc
            assert [] == [e.message for e in validator.iter_errors(doc)], doc

    def test_mutated_produced_changes_get_the_same_verdict(self):
        """Mutations of one change of each kind the SDK produces: both schemas agree."""
        changes = produced_changes(
            REALISTIC[AlienEvent.PushingImage], MINIMAL[AlienEvent.PushingImage]
        )
        documents, seen = [], set()
        for change in changes:
            doc = to_dict(change)
            doc.pop("seq")  # ours alone declares seq; Alien's ignores it as an unknown key
            kind = (doc["type"], json.dumps(doc.get("state", doc.get("newState")))[:12])
            if kind not in seen:
                seen.add(kind)
                documents.append((str(kind), doc))
        assert len(documents) >= 6
        assert [] == verdict_differences(ALIEN_CHANGE, ours(), documents)

    def test_states_get_the_same_verdict(self):
        """States, with and without an error, and their mutations: both state schemas agree."""
        documents = [(state.value, to_dict(state)) for state in EventState]
        failed = StateChanged(
            id="e1",
            updated_at=from_dict(CHANGE_EXAMPLES[0][1]).created_at,
            new_state=EventState.FAILED,
            error=CHAINED_ERROR,
        )
        documents.append(("failed with error", to_dict(failed)["newState"]))
        documents += [
            ("Success", "Success"),
            ("map form", {"none": None}),
            ("failed empty", {"failed": {}}),
        ]
        assert [] == verdict_differences(ALIEN_STATE, ours_for("EventState"), documents)

    def test_errors_get_the_same_verdict(self):
        """Errors (chained and bare) and their mutations: both error schemas agree."""
        documents = [
            ("chained", to_dict(CHAINED_ERROR)),
            ("bare", to_dict(AlienError(code="X", message="m"))),
        ]
        assert [] == verdict_differences(ALIEN_ERROR, ours_for("AlienError"), documents)

    @pytest.mark.parametrize(
        ("where", "value"),
        [
            ("error.code", "C" * 128),
            ("error.code", "C" * 129),
            ("error.httpStatusCode", 99),
            ("error.httpStatusCode", 100),
            ("error.httpStatusCode", 599),
            ("error.httpStatusCode", 600),
            ("error.httpStatusCode", None),
            ("error.hint", None),
            ("error.message", "m" * 16384),
            ("progress.layersUploaded", -1),
            ("progress.layersUploaded", 0),
            ("progress.totalBytes", -1),
            ("progress.totalBytes", 2**63),
            ("step.suggestedDelayMs", -1),
            ("step.suggestedDelayMs", 0),
            ("buckets.bucketNames", ["a", 1]),
            ("resource.relatedResources", ["a", None]),
        ],
    )
    def test_boundary_values_get_the_same_verdict(self, where, value):
        """Values at and just past Alien's limits (lengths, ranges, minimums, items) get the same verdict."""
        doc = boundary_document(where, value)
        assert ALIEN_CHANGE.is_valid(doc) == ours().is_valid(doc)

    def test_over_long_message_gets_the_same_verdict(self):
        """A message one character past Alien's maxLength is invalid for both schemas."""
        doc = boundary_document("error.message", "m" * 16385)
        assert ALIEN_CHANGE.is_valid(doc) == ours().is_valid(doc)

    @pytest.mark.parametrize("source", ["boom", 7, [], {"code": "X"}])
    def test_malformed_source_is_refused_by_our_schema_and_reader(self, source):
        """A malformed ``source`` (which Alien's schema leaves unconstrained) is refused by our schema and reader alike."""
        doc = boundary_document("error.source", source)
        assert ALIEN_CHANGE.is_valid(doc)
        assert not ours().is_valid(doc)
        with pytest.raises(WireFormatError, match="source"):
            from_dict(doc)


def boundary_document(where: str, value: Any) -> dict[str, Any]:
    """Return a valid change with one value set: in its error, progress, step, buckets or resource."""
    target, key = where.split(".")
    if "error" == target:
        error = to_dict(CHAINED_ERROR)
        error[key] = value
        return {
            "type": "stateChanged",
            "id": "e1",
            "updatedAt": "2026-11-28T17:09:46Z",
            "newState": {"failed": {"error": error}},
        }
    event = {
        "progress": to_dict(REALISTIC[AlienEvent.PushingImage]),
        "step": to_dict(REALISTIC[AlienEvent.StackStep]),
        "buckets": to_dict(REALISTIC[AlienEvent.EmptyingBuckets]),
        "resource": to_dict(REALISTIC[AlienEvent.BuildingResource]),
    }[target]
    event = copy.deepcopy(event)
    (event["progress"] if "progress" == target else event)[key] = value
    return created(event)


class TestUserTypesInSchema:
    def test_user_type_appears_with_its_tag(self):
        """A user event type is an alternative of ``event_schema()`` keyed by its own tag."""
        (alternative,) = (
            alt
            for alt in event_schema()["oneOf"]
            if ["schema-test.Surveyed"] == alt["properties"]["type"]["enum"]
        )
        assert "object" == alternative["type"]
        assert (
            "A site was surveyed (a user event type for the schema)." == alternative["description"]
        )
        assert ["siteName", "readings", "tags", "type"] == alternative["required"]
        assert {
            "siteName": {"type": "string"},
            "readings": {"type": "array", "items": {"type": "integer"}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "where": {
                "anyOf": [
                    {
                        "type": "object",
                        "description": "A nested attrs class inside a user event.",
                        "required": ["lat", "lon"],
                        "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                    },
                    {"type": "null"},
                ]
            },
            "quality": {"enum": ["low", "high"]},
            "operator": {"type": "string"},
            "type": {"type": "string", "enum": ["schema-test.Surveyed"]},
        } == alternative["properties"]

    def test_user_type_is_in_the_whole_schema(self):
        """``json_schema()`` includes the user type, so its changes validate."""
        event = Surveyed(
            site_name="north",
            readings=[1, 2],
            tags={"crew": "b"},
            where=Coordinates(51.5, -0.1),
            operator_id="op-7",
        )
        doc = created(to_dict(event))
        assert [] == [e.message for e in ours().iter_errors(doc)]
        assert "op-7" == doc["event"]["operator"]

    def test_user_type_schema_rejects_what_the_reader_rejects(self):
        """A user event missing a required key or with a wrong item type is invalid for our schema."""
        doc = to_dict(Surveyed(site_name="north", readings=[1], tags={}))
        validator = ours_for("AlienEvent")
        assert validator.is_valid(doc)
        for broken in (
            {k: v for k, v in doc.items() if "siteName" != k},
            {**doc, "readings": ["1"]},
            {**doc, "quality": "medium"},
            {**doc, "where": {"lat": 1.0}},
        ):
            assert not validator.is_valid(broken)
            with pytest.raises(WireFormatError):
                from_dict(broken, Event)

    def test_an_annotated_field_is_described_by_its_inner_type(self):
        """A field typed ``Annotated[T, ...]`` is described exactly as a field of type ``T``."""
        (alternative,) = (
            alt
            for alt in event_schema()["oneOf"]
            if ["schema-test.Sampled"] == alt["properties"]["type"]["enum"]
        )
        assert {"type": "number"} == alternative["properties"]["rate"]
        assert {
            "type": "object",
            "additionalProperties": {"type": "string"},
        } == alternative["properties"]["labels"]
        assert ["rate", "labels", "type"] == alternative["required"]

    def test_annotated_fields_are_checked_by_the_schema_as_by_the_reader(self):
        """Our schema accepts an event with annotated fields and refuses wrong kinds in them, as the reader does."""
        doc = to_dict(Sampled(rate=2.5, labels={"site": "north"}, note={"by": "ops"}))
        validator = ours_for("AlienEvent")
        assert [] == [e.message for e in validator.iter_errors(doc)]
        for broken in ({**doc, "rate": "fast"}, {**doc, "labels": {"site": 1}}):
            assert not validator.is_valid(broken)
            with pytest.raises(WireFormatError):
                from_dict(broken, Event)

    @pytest.mark.parametrize("ratio", [2, 2.5])
    def test_a_value_two_alternatives_of_a_union_match_is_valid(self, ratio):
        """An int for a ``float | int`` field (it is a number and an integer) is valid."""
        doc = to_dict(Measured(point=(1, "a"), ratio=ratio))
        assert [] == [e.message for e in ours_for("AlienEvent").iter_errors(doc)]

    @pytest.mark.parametrize(
        ("point", "valid"),
        [([1, "a"], True), (["a", 1], False), ([1], False), ([1, "a", "b"], False)],
    )
    def test_a_fixed_length_tuple_is_described_item_by_item(self, point, valid):
        """A ``tuple[int, str]`` field's schema takes exactly an integer then a string."""
        doc = {"type": "schema-test.Measured", "point": point, "ratio": 1}
        assert valid == ours_for("AlienEvent").is_valid(doc)

    def test_an_optional_free_form_field_accepts_null(self):
        """A ``note: Any | None = None`` field written as null is valid for our schema."""
        doc = to_dict(Sampled(rate=1.0, labels={}))
        assert doc["note"] is None
        assert Sampled(rate=1.0, labels={}) == from_dict(doc, Event)
        assert [] == [e.message for e in ours_for("AlienEvent").iter_errors(doc)]
