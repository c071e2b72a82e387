"""
The wire format (issue 3, section 1): JSON exactly as Rust's serde writes it, plus ``seq``.

Alien's golden examples round-trip; everything the SDK produces validates against Alien's own
JSON Schemas; Rust's key and timestamp rules hold; user event types and unknown events travel
whole; malformed input raises ``WireFormatError`` alone; random values round-trip; and the
cattrs ``converter`` is the same wire format, extensible by hooks.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import sys
import threading
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_samples import (
    CHAINED_ERROR,
    EXAMPLES,
    MINIMAL,
    REALISTIC,
    STACK_STATE,
    load_alien_schema,
    produced_changes,
)

from alien_events_api import (
    ALIEN_EVENT_TYPES,
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventChange,
    EventHandle,
    EventState,
    StateChanged,
    UnknownEvent,
    Updated,
    event_field,
    event_type,
)
from alien_events_sdk import (
    EventBus,
    RecordingHandler,
    WireFormatError,
    converter,
    dump_change_line,
    dumps,
    from_dict,
    loads,
    to_dict,
)
from alien_events_sdk._timestamps import format_micros

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z")
CAMEL_CASE = re.compile(r"[a-z][a-zA-Z0-9]*")
ALIEN_TAGS = [cls.__event_tag__ for cls in ALIEN_EVENT_TYPES]
SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

ALIEN_CHANGE_SCHEMA = load_alien_schema("eventChange")
ALIEN_EVENT_SCHEMA = load_alien_schema("alienEvent")
ALIEN_STATE_SCHEMA = load_alien_schema("eventState")
ALIEN_ERROR_SCHEMA = load_alien_schema("alienError")
CHANGE_VALIDATOR = jsonschema.Draft7Validator(ALIEN_CHANGE_SCHEMA)
EVENT_VALIDATOR = jsonschema.Draft7Validator(ALIEN_EVENT_SCHEMA)
STATE_VALIDATOR = jsonschema.Draft7Validator(ALIEN_STATE_SCHEMA)
ERROR_VALIDATOR = jsonschema.Draft7Validator(ALIEN_ERROR_SCHEMA)


def schema_errors(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    """Return the validation errors of ``instance`` as readable lines (empty when valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for error in validator.iter_errors(instance)
    ]


def micros_to_datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def datetime_to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def expected_timestamp(moment: datetime) -> str:
    """Rust's text of a UTC instant: 0, 3 or 6 fractional digits, then ``Z`` (an oracle)."""
    head = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    micros = moment.microsecond
    if micros == 0:
        return f"{head}Z"
    if micros % 1000 == 0:
        return f"{head}.{micros // 1000:03d}Z"
    return f"{head}.{micros:06d}Z"


def state_changed_doc(timestamp: Any) -> dict[str, Any]:
    return {"type": "stateChanged", "id": "e1", "updatedAt": timestamp, "newState": "success"}


def examples_of(kind: str) -> list[Any]:
    return [
        pytest.param(example, id=example["name"]) for example in EXAMPLES if kind == example["kind"]
    ]


def example_named(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(e["json"] for e in EXAMPLES if name == e["name"]))


# -- user-defined event types ---------------------------------------------------------------


@attrs.frozen
class Layer:
    """One image layer: a plain attrs class nested inside a user event."""

    digest: str
    size_bytes: int
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Target:
    """Where an image goes: nests another attrs class, optionally, and a mapping."""

    region: str
    primary: Layer | None = None
    weights: Mapping[str, float] = attrs.field(factory=dict)


@event_type(tag="wire-test.ImageShipped")
class ImageShipped(Event):
    """A user event with nested attrs classes, Optional, Sequence, Mapping and wire options."""

    image_name: str
    layers: Sequence[Layer]
    labels: Mapping[str, str]
    by_digest: Mapping[str, Layer] = attrs.field(factory=dict)
    target: Target | None = None
    note: str | None = None
    attempts: int = 0
    ratio: float = 1.0
    dry_run: bool = False
    region_code: str = event_field(default="eu-west-1", wire_name="region", omit_if_default=True)
    extra_tags: Sequence[str] = event_field(default=(), omit_if_default=True)


@event_type
class WireTestHeartbeat(Event):
    """A user event with no fields, tagged with its class name."""


@event_type(tag="wire-test.Annotated")
class Annotated(Event):
    """A user event whose mapping field defaults through a factory and is omitted when empty."""

    name: str
    annotations: Mapping[str, str] = event_field(factory=dict, omit_if_default=True)


@attrs.frozen
class Span:
    """A nested attrs class with a tuple field."""

    name: str
    path: tuple[str, ...] = ()


@event_type(tag="wire-test.Traced")
class Traced(Event):
    """A user event holding a nested attrs class with a tuple field."""

    span: Span


@event_type(tag="wire-test.Labelled")
class Labelled(Event):
    """A user event with a frozenset field."""

    labels: frozenset[str]


class Version:
    """A dotted version number whose wire form is its text, e.g. ``"1.2.3"``."""

    def __init__(self, *parts: int) -> None:
        self.parts = parts

    @classmethod
    def parse(cls, text: str) -> Version:
        return cls(*(int(part) for part in text.split(".")))

    def __str__(self) -> str:
        return ".".join(map(str, self.parts))

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)


@event_type(tag="wire-test.Released")
class Released(Event):
    """A user event whose fields are of a class only a converter hook knows."""

    version: Version
    previous: Version | None = None
    history: Sequence[Version] = ()


def teach_converter_versions() -> None:
    """Register the ``Version`` hooks on the SDK's converter (idempotent)."""
    converter.register_unstructure_hook(Version, str)
    converter.register_structure_hook(Version, lambda value, _: Version.parse(value))


@event_type(tag="wire-test.Counted")
class Counted(Event):
    """A user event with an int field and a free-form one, for values orjson refuses."""

    count: int
    extra: Any = None


USER_TYPES = (ImageShipped, WireTestHeartbeat)


# -- hypothesis strategies --------------------------------------------------------------------

TEXT = st.text(max_size=12)
IDS = st.text(min_size=1, max_size=36)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | FLOATS | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Return values of a field's type hint (what the event types in these tests use)."""
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: TEXT,
        int: st.integers(0, 2**64 - 1),
        float: FLOATS,
        bool: st.booleans(),
        Any: JSON_VALUES,
    }
    if hint in simple:
        return simple[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(st.none() if arg is type(None) else strategy_for(arg) for arg in args))
    if origin in (list, Sequence):
        return st.lists(strategy_for(args[0]), max_size=3)
    if origin in (dict, Mapping):
        return st.dictionaries(TEXT, strategy_for(args[1]), max_size=3)
    if attrs.has(hint):
        return instances_of(hint)
    raise TypeError(f"no strategy for {hint!r}")


def instances_of(cls: type, **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Return random instances of an attrs class (an event type or a nested class)."""
    attrs.resolve_types(cls)
    fields = {f.alias or f.name: strategy_for(f.type) for f in attrs.fields(cls) if f.init}
    return st.builds(cls, **{**fields, **overrides})


ALIEN_EVENTS = st.one_of(*(instances_of(cls) for cls in ALIEN_EVENT_TYPES))
# For Alien's schema, StackStep's nextState must be a StackState, not any JSON object.
SCHEMA_VALID_ALIEN_EVENTS = st.one_of(
    *(
        instances_of(
            cls,
            next_state=st.sampled_from([STACK_STATE, MINIMAL[AlienEvent.StackStep].next_state]),
        )
        if cls is AlienEvent.StackStep
        else instances_of(cls)
        for cls in ALIEN_EVENT_TYPES
    )
)
USER_EVENTS = st.one_of(*(instances_of(cls) for cls in USER_TYPES))
ANY_EVENTS = ALIEN_EVENTS | USER_EVENTS
ERRORS = st.deferred(
    lambda: st.builds(
        AlienError,
        code=st.text(max_size=20),
        message=TEXT,
        context=st.none() | JSON_VALUES,
        hint=st.none() | TEXT,
        retryable=st.booleans(),
        internal=st.booleans(),
        http_status_code=st.none() | st.integers(100, 599),
        source=st.none() | ERRORS,
    )
)
STATES_WITH_ERRORS = st.tuples(
    st.sampled_from([EventState.NONE, EventState.STARTED, EventState.SUCCESS]), st.none()
) | st.tuples(st.just(EventState.FAILED), st.none() | ERRORS)
TIMES = st.datetimes(
    min_value=datetime(1000, 1, 1),  # noqa: DTZ001  (hypothesis bounds are naive)
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
    timezones=st.just(UTC),
)
SEQS = st.none() | st.integers(0, 2**63 - 1)
PARENTS = st.none() | IDS


def changes_of(events: st.SearchStrategy[Event]) -> st.SearchStrategy[EventChange]:
    """Return random changes of the three kinds carrying ``events``."""
    created = st.builds(
        lambda event_id, parent, at, event, state_error, seq: Created(
            id=event_id,
            parent_id=parent,
            created_at=at,
            event=event,
            state=state_error[0],
            error=state_error[1],
            seq=seq,
        ),
        IDS,
        PARENTS,
        TIMES,
        events,
        STATES_WITH_ERRORS,
        SEQS,
    )
    updated = st.builds(
        lambda event_id, at, event, seq: Updated(id=event_id, updated_at=at, event=event, seq=seq),
        IDS,
        TIMES,
        events,
        SEQS,
    )
    state_changed = st.builds(
        lambda event_id, at, state_error, seq: StateChanged(
            id=event_id, updated_at=at, new_state=state_error[0], error=state_error[1], seq=seq
        ),
        IDS,
        TIMES,
        STATES_WITH_ERRORS,
        SEQS,
    )
    return created | updated | state_changed


# -- the golden examples --------------------------------------------------------------------


class TestConformanceExamples:
    def test_the_examples_file_holds_every_kind(self):
        """wire-examples.jsonl holds changes, a state, events, timestamps and a handle."""
        kinds = {example["kind"] for example in EXAMPLES}
        assert {"change", "state", "event", "timestamp", "handle"} == kinds
        assert len(EXAMPLES) >= 21

    @pytest.mark.parametrize("example", examples_of("change"))
    def test_change_examples_round_trip(self, example):
        """Each golden change re-serializes as itself, its timestamp at microsecond precision."""
        expected = copy.deepcopy(example["json"])
        if "canonical_timestamp" in example:
            key = "createdAt" if "created" == expected["type"] else "updatedAt"
            expected[key] = example["canonical_timestamp"]
        change = loads(json.dumps(example["json"]))
        assert expected == json.loads(dumps(change))
        assert expected == to_dict(from_dict(example["json"]))
        assert change == from_dict(example["json"])

    @pytest.mark.parametrize("example", examples_of("change"))
    def test_seq_less_examples_stay_seq_less(self, example):
        """Alien's changes carry no ``seq``: they read as ``seq=None`` and are written without it."""
        change = from_dict(example["json"])
        assert None is change.seq
        assert "seq" not in json.loads(dumps(change))
        assert None is loads(dumps(change)).seq

    @pytest.mark.parametrize("example", examples_of("state"))
    def test_state_example_reserializes_as_its_canonical_form(self, example):
        """``{"failed":{}}`` reads as FAILED without an error and writes ``{"failed":{"error":null}}``."""
        state = from_dict(example["json"], EventState)
        assert EventState.FAILED is state
        assert example["canonical"] == to_dict(state)
        doc = state_changed_doc("2025-01-02T03:04:05Z")
        doc["newState"] = example["json"]
        change = from_dict(doc)
        assert None is change.error
        assert example["canonical"] == to_dict(change)["newState"]

    @pytest.mark.parametrize("example", examples_of("event"))
    def test_event_examples_round_trip(self, example):
        """Each golden event reads as its AlienEvent type and re-serializes as itself."""
        event = from_dict(example["json"], Event)
        assert example["json"]["type"] == type(event).__event_tag__
        assert type(event) in ALIEN_EVENT_TYPES
        assert example["json"] == to_dict(event)
        assert example["json"] == json.loads(dumps(event))

    @pytest.mark.parametrize("example", examples_of("timestamp"))
    def test_timestamp_examples(self, example):
        """Timestamp texts round-trip; offset input is normalised to the canonical UTC text."""
        text = example.get("input", example.get("text"))
        canonical = example.get("canonical", example.get("text"))
        change = loads(json.dumps(state_changed_doc(text)))
        assert canonical == to_dict(change)["updatedAt"]
        assert canonical == json.loads(dumps(change))["updatedAt"]
        if "ns" in example:
            assert example["ns"] // 1000 == change.updated_at.microsecond

    @pytest.mark.parametrize("example", examples_of("handle"))
    def test_handle_example_uses_snake_case_keys(self, example):
        """A handle reads from and writes to ``{"id":..., "parent_id":...}``, never a no-op."""
        handle = from_dict(example["json"], EventHandle)
        assert example["json"]["id"] == handle.id
        assert None is handle.parent_id
        assert False is handle.is_noop
        assert example["json"] == to_dict(handle)
        assert ["id", "parent_id"] == list(json.loads(dumps(handle)))


# -- Alien's own schemas --------------------------------------------------------------------


class TestAlienSchemas:
    def test_alien_schemas_are_valid_draft_07(self):
        """Alien's four schemas are themselves valid (draft-07), so their verdicts mean something."""
        for schema in (
            ALIEN_CHANGE_SCHEMA,
            ALIEN_EVENT_SCHEMA,
            ALIEN_STATE_SCHEMA,
            ALIEN_ERROR_SCHEMA,
        ):
            jsonschema.Draft7Validator.check_schema(schema)

    def test_the_samples_cover_all_31_types(self):
        """The realistic samples are exactly the 31 Alien types, in declaration order."""
        alien_tags = [alt["properties"]["type"]["enum"][0] for alt in ALIEN_EVENT_SCHEMA["oneOf"]]
        assert alien_tags == ALIEN_TAGS
        assert 31 == len(REALISTIC)
        assert list(ALIEN_EVENT_TYPES) == [type(event) for event in REALISTIC.values()]

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_every_produced_change_validates_against_event_change_json(self, cls):
        """Every change the SDK makes (each state, FAILED with a chain, update, complete, fail) is valid."""
        changes = produced_changes(REALISTIC[cls], MINIMAL[cls])
        kinds = {
            (type(c).__name__, str(getattr(c, "state", getattr(c, "new_state", ""))))
            for c in changes
        }
        assert {
            ("Created", "none"),
            ("Created", "started"),
            ("Created", "success"),
            ("Created", "failed"),
            ("Updated", ""),
            ("StateChanged", "success"),
            ("StateChanged", "failed"),
        } == kinds
        for change in changes:
            doc = to_dict(change)
            assert [] == schema_errors(CHANGE_VALIDATOR, doc), doc
            assert [] == schema_errors(CHANGE_VALIDATOR, json.loads(dumps(change))), doc
            timestamp = doc.get("createdAt", doc.get("updatedAt"))
            assert RFC3339_UTC.fullmatch(timestamp), timestamp

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_each_event_alone_validates_against_alien_event_json(self, cls):
        """Each of the 31 types, with optional fields filled and left empty, is a valid AlienEvent."""
        for event in (REALISTIC[cls], MINIMAL[cls]):
            assert [] == schema_errors(EVENT_VALIDATOR, to_dict(event)), event

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_each_realistic_event_fills_exactly_alien_properties(self, cls):
        """With every optional field set, an event's keys are exactly the properties Alien declares."""
        (alternative,) = (
            alt
            for alt in ALIEN_EVENT_SCHEMA["oneOf"]
            if [cls.__event_tag__] == alt["properties"]["type"]["enum"]
        )
        assert set(alternative["properties"]) == set(to_dict(REALISTIC[cls]))
        assert set(alternative["required"]) <= set(to_dict(MINIMAL[cls]))

    def test_every_state_validates_against_event_state_json(self):
        """Each state, and FAILED with no error or with an error chain, is a valid EventState."""
        for state in EventState:
            assert [] == schema_errors(STATE_VALIDATOR, to_dict(state))
        failed = to_dict(
            StateChanged(
                id="e1",
                updated_at=EPOCH,
                new_state=EventState.FAILED,
                error=CHAINED_ERROR,
            )
        )["newState"]
        assert [] == schema_errors(STATE_VALIDATOR, failed)
        assert {"failed": {"error": to_dict(CHAINED_ERROR)}} == failed

    def test_errors_validate_against_alien_error_json(self):
        """A chained error, a bare one and one built from an exception are valid AlienErrors."""
        try:
            raise ValueError("bad port") from OSError("refused")
        except ValueError as exc:
            from_exception = AlienError.from_exception(exc)
        for error in (CHAINED_ERROR, AlienError(code="X", message=""), from_exception):
            assert [] == schema_errors(ERROR_VALIDATOR, to_dict(error))
            source = to_dict(error).get("source")
            while source is not None:
                assert [] == schema_errors(ERROR_VALIDATOR, source)
                source = source.get("source")

    @SETTINGS
    @given(changes_of(SCHEMA_VALID_ALIEN_EVENTS))
    def test_random_changes_validate_against_event_change_json(self, change):
        """Random changes of the 31 types, states, errors and seq are valid for Alien's schema."""
        assert [] == schema_errors(CHANGE_VALIDATOR, to_dict(change))

    @SETTINGS
    @given(ERRORS)
    def test_random_errors_validate_against_alien_error_json(self, error):
        """Random error chains are valid for Alien's AlienError schema."""
        assert [] == schema_errors(ERROR_VALIDATOR, to_dict(error))


# -- Rust's key rules -----------------------------------------------------------------------


def keys_in_text(text: str) -> list[str]:
    """Return the top-level keys of a JSON object text, in the order they are written."""
    return list(json.loads(text))


ROOT_CREATED = Created(
    id="43d9b9cd-62a2-4eb8-b2c9-d6325da39208",
    created_at=datetime(2026, 11, 28, 17, 9, 46, 305176, tzinfo=UTC),
    event=AlienEvent.BuildingStack(stack="my-stack"),
    state=EventState.STARTED,
)


class TestRustKeyRules:
    def test_compact_text_of_a_created_change(self):
        """A root Created is written compactly: type first, parentId null, seq last."""
        assert (
            '{"type":"created","id":"43d9b9cd-62a2-4eb8-b2c9-d6325da39208","parentId":null,'
            '"createdAt":"2026-11-28T17:09:46.305176Z",'
            '"event":{"type":"BuildingStack","stack":"my-stack"},"state":"started","seq":0}'
        ) == dumps(ROOT_CREATED)

    def test_change_keys_come_type_first_then_in_declaration_order(self):
        """Each change kind writes "type" first, then its fields in Rust's order, then seq."""
        at = datetime(2026, 1, 1, tzinfo=UTC)
        event = REALISTIC[AlienEvent.PushingImage]
        assert ["type", "id", "parentId", "createdAt", "event", "state", "seq"] == keys_in_text(
            dumps(Created(id="a", parent_id="p", created_at=at, event=event))
        )
        assert ["type", "id", "updatedAt", "event", "seq"] == keys_in_text(
            dumps(Updated(id="a", updated_at=at, event=event))
        )
        assert ["type", "id", "updatedAt", "newState", "seq"] == keys_in_text(
            dumps(StateChanged(id="a", updated_at=at, new_state=EventState.SUCCESS))
        )

    @pytest.mark.parametrize("cls", ALIEN_EVENT_TYPES, ids=ALIEN_TAGS)
    def test_event_keys_are_type_then_camel_case_fields_in_order(self, cls):
        """Each event writes "type" first, then its fields' camelCase keys in declaration order."""
        expected = ["type"] + [
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field.name)
            for field in attrs.fields(cls)
        ]
        written = keys_in_text(dumps(REALISTIC[cls]))
        assert expected == written
        assert all(CAMEL_CASE.fullmatch(key) for key in written)

    def test_nested_keys_keep_declaration_order(self):
        """PushProgress and AlienError keys follow Rust's field order in the text."""
        progress_text = dumps(REALISTIC[AlienEvent.PushingImage])
        progress = json.loads(progress_text)["progress"]
        assert [
            "operation",
            "layersUploaded",
            "totalLayers",
            "bytesUploaded",
            "totalBytes",
        ] == list(progress)
        assert [
            "code",
            "message",
            "context",
            "hint",
            "retryable",
            "internal",
            "httpStatusCode",
            "source",
        ] == keys_in_text(dumps(CHAINED_ERROR))
        assert ["code", "message", "retryable", "internal"] == keys_in_text(
            dumps(AlienError(code="X", message="m"))
        )

    def test_root_parent_id_is_written_as_null(self):
        """A root Created keeps ``"parentId": null`` (always serialized, as Rust does)."""
        doc = json.loads(dumps(ROOT_CREATED))
        assert "parentId" in doc
        assert None is doc["parentId"]

    def test_parent_id_may_be_missing_on_input(self):
        """A Created without ``parentId`` reads as a root."""
        doc = example_named("created_root_started")
        del doc["parentId"]
        assert None is from_dict(doc).parent_id

    def test_optional_fields_follow_rusts_omission_rules(self):
        """Empty relatedResources and a None destination are omitted; None progress is null; [] buckets stay."""
        assert {"type": "BuildingResource", "resourceName": "api", "resourceType": "worker"} == (
            to_dict(AlienEvent.BuildingResource(resource_name="api", resource_type="worker"))
        )
        assert {"type": "PushingStack", "stack": "s", "platform": "aws"} == to_dict(
            AlienEvent.PushingStack(stack="s", platform="aws")
        )
        assert {"type": "EmptyingBuckets", "bucketNames": []} == to_dict(
            AlienEvent.EmptyingBuckets(bucket_names=[])
        )
        assert {"type": "CompilingCode", "language": "rust", "progress": None} == to_dict(
            AlienEvent.CompilingCode(language="rust")
        )
        assert {"type": "PushingImage", "image": "api", "progress": None} == to_dict(
            AlienEvent.PushingImage(image="api")
        )
        assert {"type": "StackStep", "nextState": {}, "suggestedDelayMs": None} == to_dict(
            AlienEvent.StackStep(next_state={})
        )

    def test_missing_optional_fields_read_as_none(self):
        """Option fields absent on input read as None (and defaults for omitted lists)."""
        assert AlienEvent.CompilingCode(language="go") == from_dict(
            {"type": "CompilingCode", "language": "go"}, Event
        )
        assert AlienEvent.PushingImage(image="api") == from_dict(
            {"type": "PushingImage", "image": "api"}, Event
        )
        assert AlienEvent.BuildingResource(resource_name="a", resource_type="worker") == (
            from_dict(
                {"type": "BuildingResource", "resourceName": "a", "resourceType": "worker"}, Event
            )
        )

    def test_type_key_may_come_anywhere_on_input(self):
        """The ``"type"`` tag is found wherever it is in the object, for changes and events."""
        doc = {
            "event": {"stack": "my-stack", "type": "BuildingStack"},
            "state": "started",
            "id": ROOT_CREATED.id,
            "createdAt": "2026-11-28T17:09:46.305176Z",
            "type": "created",
        }
        assert ROOT_CREATED.replace(seq=None) == loads(json.dumps(doc))

    def test_unknown_extra_keys_are_ignored_on_input(self):
        """Keys a type does not declare are ignored in changes and events, and not written back."""
        doc = example_named("created_root_started")
        doc["traceId"] = "abc"
        doc["event"]["color"] = "red"
        change = from_dict(doc)
        assert AlienEvent.BuildingStack(stack="my-stack") == change.event
        assert "traceId" not in to_dict(change)
        assert {"type": "BuildingStack", "stack": "my-stack"} == to_dict(change)["event"]

    def test_our_changes_carry_seq(self, bus, recorder):
        """Changes made by the bus carry ``seq`` (0 for Created, then 1, 2, ...) on the wire."""
        with bus:
            handle = AlienEvent.BuildingStack(stack="s").emit(EventState.STARTED)
            handle.update(AlienEvent.BuildingStack(stack="s2"))
            handle.complete()
        assert [0, 1, 2] == [json.loads(dumps(c))["seq"] for c in recorder.changes]
        assert [0, 1, 2] == [loads(dumps(c)).seq for c in recorder.changes]

    def test_map_form_of_unit_states_is_accepted(self):
        """serde's map form ``{"none": null}`` (and the other unit states) reads as that state."""
        for state in (EventState.NONE, EventState.STARTED, EventState.SUCCESS):
            doc = state_changed_doc("2025-01-02T03:04:05Z")
            doc["newState"] = {state.value: None}
            assert state is from_dict(doc).new_state
            assert state is from_dict({state.value: None}, EventState)

    @pytest.mark.parametrize("text", ["Success", "NONE", "Started", "failed", "", "done"])
    def test_states_are_case_sensitive_strings(self, text):
        """A unit state in the wrong case (``"Success"``) or an unknown one is rejected."""
        doc = state_changed_doc("2025-01-02T03:04:05Z")
        doc["newState"] = text
        with pytest.raises(WireFormatError) as info:
            from_dict(doc)
        assert "newState" == info.value.path
        assert repr(text) in info.value.reason

    def test_failed_state_carries_its_error(self):
        """``{"failed":{"error":...}}`` reads into (FAILED, error) and writes the same JSON."""
        doc = example_named("state_changed_failed_with_source")
        change = from_dict(doc)
        assert EventState.FAILED is change.new_state
        assert "INVALID_RESOURCE_UPDATE" == change.error.code
        assert {"resource_id": "r", "reason": "x"} == change.error.context
        assert "GENERIC_ERROR" == change.error.source.code
        assert True is change.error.source.retryable
        assert doc == to_dict(change)


# -- timestamps -----------------------------------------------------------------------------

MICROS_1000 = datetime_to_micros(datetime(1000, 1, 1, tzinfo=UTC))
MICROS_9999 = datetime_to_micros(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
MICROS = st.integers(MICROS_1000, MICROS_9999)
ROUNDISH_MICROS = (
    MICROS | MICROS.map(lambda m: m - m % 1_000_000) | MICROS.map(lambda m: m - m % 1000)
)


def written_timestamp(micros: int) -> str:
    change = StateChanged(
        id="e1", updated_at=micros_to_datetime(micros), new_state=EventState.SUCCESS
    )
    return json.loads(dumps(change))["updatedAt"]


def read_timestamp(text: str) -> datetime:
    return loads(json.dumps(state_changed_doc(text))).updated_at


class TestTimestamps:
    @pytest.mark.parametrize(
        ("moment", "text"),
        [
            (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
            (datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC), "2025-01-02T03:04:05.500Z"),
            (datetime(2025, 1, 2, 3, 4, 5, 1000, tzinfo=UTC), "2025-01-02T03:04:05.001Z"),
            (datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "2025-01-02T03:04:05.123456Z"),
            (datetime(2025, 1, 2, 3, 4, 5, 100, tzinfo=UTC), "2025-01-02T03:04:05.000100Z"),
            (datetime(2025, 1, 2, 3, 4, 5, 1, tzinfo=UTC), "2025-01-02T03:04:05.000001Z"),
            (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "1969-12-31T23:59:59.999999Z"),
            (datetime(1000, 1, 1, tzinfo=UTC), "1000-01-01T00:00:00Z"),
            (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
        ],
    )
    def test_fraction_digits_follow_rusts_rule(self, moment, text):
        """Whole seconds get no fraction, whole milliseconds 3 digits, anything else 6."""
        assert text == written_timestamp(datetime_to_micros(moment))
        assert moment == read_timestamp(text)

    @SETTINGS
    @given(ROUNDISH_MICROS)
    def test_any_microsecond_instant_is_written_by_the_rule(self, micros):
        """For any microsecond instant the text has 0, 3 or 6 digits by Rust's rule and reads back."""
        text = written_timestamp(micros)
        fraction = micros % 1_000_000
        digits = 0 if 0 == fraction else 3 if 0 == fraction % 1000 else 6
        assert expected_timestamp(micros_to_datetime(micros)) == text
        assert RFC3339_UTC.fullmatch(text)
        assert digits == (len(text.split(".")[1]) - 1 if "." in text else 0)
        assert micros_to_datetime(micros) == read_timestamp(text)

    @SETTINGS
    @given(MICROS, st.lists(st.integers(-1500, 1500), min_size=1, max_size=40))
    def test_instants_close_together_are_each_written_by_the_rule(self, base, offsets):
        """Runs of instants within a few milliseconds (the cached case), in any order, come out right."""
        for offset in offsets:
            micros = min(max(base + offset, MICROS_1000), MICROS_9999)
            assert expected_timestamp(micros_to_datetime(micros)) == written_timestamp(micros)

    def test_threads_formatting_at_once_each_get_their_own_instant(self):
        """Threads that keep replacing the cached millisecond never get another's text."""
        # The same milliseconds for every thread (as for threads emitting at the same time),
        # each thread with instants of its own within them.
        bases = [random.Random(0).randrange(MICROS_1000, MICROS_9999) for _ in range(2000)]  # noqa: S311

        def instants(seed: int) -> list[int]:
            pick = random.Random(seed)  # noqa: S311  (reproducible test data)
            return [base + pick.randrange(0, 3000) for base in bases for _ in range(10)]

        wanted = [instants(seed) for seed in range(1, 5)]
        made: list[list[str]] = [[] for _ in wanted]
        start = threading.Barrier(len(wanted))

        def format_all(index: int) -> None:
            start.wait()
            made[index].extend(format_micros(micros) for micros in wanted[index])

        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
        try:
            threads = [threading.Thread(target=format_all, args=(i,)) for i in range(len(wanted))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(switch)
        for texts, instants_of_thread in zip(made, wanted, strict=True):
            assert [expected_timestamp(micros_to_datetime(m)) for m in instants_of_thread] == texts

    @SETTINGS
    @given(
        st.integers(MICROS_1000 + 86_400_000_000, MICROS_9999 - 86_400_000_000),
        st.integers(-(23 * 60 + 59), 23 * 60 + 59),
        st.integers(0, 9),
        st.integers(0, 999),
        st.sampled_from(["Z", "+00:00", "-00:00"]),
    )
    def test_any_offset_is_normalised_to_utc(self, micros, offset_minutes, digits, nanos, zero):
        """Input in any RFC 3339 offset, with 0 to 9 fraction digits, reads as the same UTC instant."""
        moment = micros_to_datetime(micros)
        local = moment + timedelta(minutes=offset_minutes)
        nine = f"{moment.microsecond:06d}{nanos:03d}"
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        offset = zero if 0 == offset_minutes else f"{sign}{hours:02d}:{minutes:02d}"
        text = f"{local:%Y-%m-%dT%H:%M:%S}" + (f".{nine[:digits]}" if digits else "") + offset
        expected = moment.replace(microsecond=int(nine[: min(digits, 6)].ljust(6, "0")))
        assert expected == read_timestamp(text)
        assert (
            expected_timestamp(expected)
            == json.loads(dumps(loads(json.dumps(state_changed_doc(text)))))["updatedAt"]
        )

    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            ("2026-11-28T17:09:46.305176373Z", "2026-11-28T17:09:46.305176Z"),
            ("2026-11-28T17:09:46.999999999Z", "2026-11-28T17:09:46.999999Z"),
            ("2026-11-28T17:09:46.000000999Z", "2026-11-28T17:09:46Z"),
            ("2026-11-28T17:09:46.1234567Z", "2026-11-28T17:09:46.123456Z"),
            ("2026-11-28T17:09:46.5Z", "2026-11-28T17:09:46.500Z"),
            ("2026-11-28T17:09:46.12Z", "2026-11-28T17:09:46.120Z"),
            ("2026-11-28T17:09:46.000Z", "2026-11-28T17:09:46Z"),
            ("2024-01-01T00:00:00+02:00", "2023-12-31T22:00:00Z"),
            ("2024-01-01T23:30:00.250-05:30", "2024-01-02T05:00:00.250Z"),
        ],
    )
    def test_nine_digit_input_is_truncated_to_microseconds(self, text, canonical):
        """Digits past the sixth are dropped (never rounded up) and the text re-written canonically."""
        assert canonical == written_timestamp(datetime_to_micros(read_timestamp(text)))

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-28T17:09:46",
            "2026-11-28",
            "2026-11-28 17:09:46Z",
            "2026-11-28T17:09:46.Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T17:09:46+2:00",
            "yesterday",
            "",
        ],
    )
    def test_invalid_timestamps_are_rejected(self, text):
        """Text that is not an RFC 3339 date-time with an offset is a WireFormatError at its field."""
        with pytest.raises(WireFormatError) as info:
            read_timestamp(text)
        assert "updatedAt" == info.value.path
        assert repr(text) in info.value.reason

    @pytest.mark.parametrize("year", [1, 99, 999])
    def test_years_below_1000_are_zero_padded(self, year):
        """An instant in year 1..999 is written with a four-digit year and reads back."""
        moment = datetime(year, 1, 1, 0, 0, 0, 5, tzinfo=UTC)
        text = written_timestamp(datetime_to_micros(moment))
        assert f"{year:04d}-01-01T00:00:00.000005Z" == text
        assert moment == read_timestamp(text)

    @pytest.mark.parametrize("text", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
    def test_instants_outside_the_datetime_range_are_rejected(self, text):
        """A timestamp whose UTC instant Python cannot represent is a WireFormatError."""
        with pytest.raises(WireFormatError) as info:
            read_timestamp(text)
        assert "updatedAt" == info.value.path


# -- user-defined event types ---------------------------------------------------------------

SHIPPED = ImageShipped(
    image_name="api",
    layers=[Layer("sha256:aa", 10, ["base"]), Layer("sha256:bb", 20)],
    labels={"team": "core"},
    by_digest={"sha256:aa": Layer("sha256:aa", 10)},
    target=Target("eu-west-1", primary=Layer("sha256:cc", 5), weights={"a": 0.5}),
    attempts=2,
)


class TestUserEventTypes:
    def test_user_event_serializes_with_its_own_tag(self):
        """A user event writes its tag, camelCase keys (nested too) and omits omit-if-default fields."""
        assert {
            "type": "wire-test.ImageShipped",
            "imageName": "api",
            "layers": [
                {"digest": "sha256:aa", "sizeBytes": 10, "tags": ["base"]},
                {"digest": "sha256:bb", "sizeBytes": 20, "tags": []},
            ],
            "labels": {"team": "core"},
            "byDigest": {"sha256:aa": {"digest": "sha256:aa", "sizeBytes": 10, "tags": []}},
            "target": {
                "region": "eu-west-1",
                "primary": {"digest": "sha256:cc", "sizeBytes": 5, "tags": []},
                "weights": {"a": 0.5},
            },
            "note": None,
            "attempts": 2,
            "ratio": 1.0,
            "dryRun": False,
        } == to_dict(SHIPPED)

    def test_wire_name_and_omitted_defaults_are_written_when_set(self):
        """A field with ``wire_name`` uses that key, and an omit-if-default field appears once set."""
        shipped = attrs.evolve(SHIPPED, region_code="us-east-1", extra_tags=["canary"])
        doc = to_dict(shipped)
        assert "us-east-1" == doc["region"]
        assert "regionCode" not in doc
        assert ["canary"] == doc["extraTags"]
        assert shipped == from_dict(doc, ImageShipped)

    def test_user_event_round_trips(self):
        """A user event reads back equal, by its own type and by ``Event``."""
        assert SHIPPED == from_dict(to_dict(SHIPPED), ImageShipped)
        assert SHIPPED == from_dict(json.loads(dumps(SHIPPED)), Event)
        assert isinstance(from_dict(to_dict(SHIPPED), Event).target.primary, Layer)

    def test_omitted_and_missing_fields_read_as_defaults(self):
        """Keys left out (omit-if-default or optional) read back as the field defaults."""
        doc = {"type": "wire-test.ImageShipped", "imageName": "x", "layers": [], "labels": {}}
        assert ImageShipped(image_name="x", layers=[], labels={}) == from_dict(doc, Event)

    def test_user_event_round_trips_inside_changes(self, bus, recorder):
        """Changes the bus makes for a user event round-trip through the text form."""
        with bus:
            with SHIPPED.in_scope() as handle:
                handle.update(attrs.evolve(SHIPPED, attempts=3))
            WireTestHeartbeat().emit()
        assert 4 == len(recorder.changes)
        for change in recorder.changes:
            assert change == loads(dumps(change))
        assert {"type": "WireTestHeartbeat"} == to_dict(recorder.changes[-1])["event"]

    def test_user_field_errors_name_the_nested_field(self):
        """A bad value deep inside a user event is a WireFormatError whose path names it."""
        doc = copy.deepcopy(to_dict(SHIPPED))
        del doc["layers"][1]["sizeBytes"]
        with pytest.raises(WireFormatError) as info:
            from_dict(doc, Event)
        assert "layers[1].sizeBytes" == info.value.path
        assert "missing" in info.value.reason
        doc = copy.deepcopy(to_dict(SHIPPED))
        doc["labels"]["team"] = 7
        with pytest.raises(WireFormatError) as info:
            from_dict(doc, Event)
        assert info.value.path.startswith("labels")
        assert "expected str" in info.value.reason

    def test_wrongly_typed_nested_values_are_rejected(self):
        """A wrongly typed value inside a nested attrs class is a WireFormatError naming it."""
        doc = copy.deepcopy(to_dict(SHIPPED))
        doc["layers"][1]["sizeBytes"] = "20"
        with pytest.raises(WireFormatError) as info:
            from_dict(doc, Event)
        assert "layers[1].sizeBytes" == info.value.path

    def test_to_dict_output_is_independent_of_the_event(self):
        """Editing what ``to_dict`` returned leaves the event, and the next ``to_dict``, unchanged."""
        step = AlienEvent.StackStep(next_state=copy.deepcopy(STACK_STATE))
        shipped = ImageShipped(image_name="api", layers=[], labels={"team": "core"})
        to_dict(step)["nextState"]["platform"] = "gcp"
        to_dict(shipped)["labels"]["team"] = "edited"
        assert "aws" == step.next_state["platform"]
        assert {"team": "core"} == shipped.labels

    def test_reading_as_the_wrong_type_is_an_error(self):
        """``from_dict`` with a user type refuses another type's JSON, naming the tag field."""
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "BuildingStack", "stack": "s"}, ImageShipped)
        assert "type" == info.value.path

    def test_factory_default_is_omitted_when_equal(self):
        """A factory-defaulted omit-if-default field is left out while it equals a fresh default."""
        assert {"type": "wire-test.Annotated", "name": "n"} == to_dict(Annotated(name="n"))

    def test_nested_tuple_fields_read_back_as_tuples(self):
        """A nested attrs class's ``tuple[str, ...]`` field round-trips as a tuple."""
        traced = Traced(span=Span("deploy", ("build", "push")))
        assert traced == from_dict(to_dict(traced), Traced)

    def test_frozenset_fields_round_trip(self):
        """An event's ``frozenset[str]`` field is written as an array and reads back as a frozenset."""
        labelled = Labelled(labels=frozenset({"a", "b"}))
        assert ["a", "b"] == sorted(to_dict(labelled)["labels"])
        assert labelled == from_dict(to_dict(labelled), Labelled)


# -- unknown events -------------------------------------------------------------------------

UNKNOWN_EVENT_DOC = {
    "type": "RocketLaunched",
    "rocketId": "r-1",
    "stages": [{"n": 1, "fuel": None}, {"n": 2, "fuel": "LOX"}],
    "meta": {"nested": {"deep": [True, 1.5, -3]}},
    "note": None,
}


class TestUnknownEvents:
    def test_unknown_tag_reads_as_unknown_event_keeping_the_payload(self):
        """An unregistered tag reads as UnknownEvent with the tag and every other key."""
        event = from_dict(copy.deepcopy(UNKNOWN_EVENT_DOC), Event)
        assert UnknownEvent is type(event)
        assert "RocketLaunched" == event.tag
        assert {k: v for k, v in UNKNOWN_EVENT_DOC.items() if "type" != k} == event.data

    def test_unknown_event_writes_back_unchanged(self):
        """An UnknownEvent is written back as the JSON it came from, "type" first."""
        event = from_dict(copy.deepcopy(UNKNOWN_EVENT_DOC), Event)
        assert UNKNOWN_EVENT_DOC == to_dict(event)
        assert UNKNOWN_EVENT_DOC == json.loads(dumps(event))
        assert "type" == keys_in_text(dumps(event))[0]

    @pytest.mark.parametrize("name", ["created_root_started", "updated"])
    def test_unknown_event_inside_a_change_round_trips(self, name):
        """A change carrying an unknown event reads and writes back unchanged."""
        doc = example_named(name)
        doc["event"] = copy.deepcopy(UNKNOWN_EVENT_DOC)
        doc[("createdAt" if "created" == doc["type"] else "updatedAt")] = "2026-11-28T17:09:46.305Z"
        doc["seq"] = 4
        change = loads(json.dumps(doc))
        assert UnknownEvent is type(change.event)
        assert doc == json.loads(dumps(change))
        assert doc == to_dict(from_dict(doc))
        assert change == loads(dumps(change))

    def test_reading_unknown_event_as_a_known_type_is_an_error(self):
        """Asking for a specific type when the tag is unknown is a WireFormatError at ``type``."""
        with pytest.raises(WireFormatError) as info:
            from_dict(copy.deepcopy(UNKNOWN_EVENT_DOC), AlienEvent.BuildingStack)
        assert "type" == info.value.path
        assert "UnknownEvent" in info.value.reason

    def test_unknown_event_is_delivered_by_the_bus_unchanged(self, bus, recorder):
        """An UnknownEvent re-emitted through a bus is written out with its original payload."""
        event = from_dict(copy.deepcopy(UNKNOWN_EVENT_DOC), Event)
        with bus:
            event.emit()
        assert UNKNOWN_EVENT_DOC == json.loads(dumps(recorder.changes[0]))["event"]


# -- malformed input ------------------------------------------------------------------------


def created_doc() -> dict[str, Any]:
    return example_named("created_child_with_progress")


def edited(base: dict[str, Any], path: str, value: Any = None, *, delete: bool = False):
    """Return a copy of ``base`` with the value at a dotted ``path`` replaced or deleted."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return doc


ERROR_DOC = {"code": "X", "message": "m", "retryable": False, "internal": False}
FAILED_DOC = example_named("state_changed_failed_typed_error")

MALFORMED_TEXTS = [
    pytest.param('{"type": "created",', "<document>", "not JSON", id="truncated"),
    pytest.param("", "<document>", "not JSON", id="empty"),
    pytest.param("{'type': 'created'}", "<document>", "not JSON", id="single-quotes"),
    pytest.param('{"a": NaN}', "<document>", "not JSON", id="nan"),
    pytest.param("[]", "<document>", "expected a JSON object", id="array"),
    pytest.param('"created"', "<document>", "expected a JSON object", id="string"),
    pytest.param("null", "<document>", "expected a JSON object", id="null"),
    pytest.param("42", "<document>", "expected a JSON object", id="number"),
]

MALFORMED_DOCS = [
    pytest.param(edited(created_doc(), "type", delete=True), "type", "missing", id="no-type"),
    pytest.param(
        edited(created_doc(), "type", "deleted"),
        "type",
        '"created", "updated"',
        id="bad-change-type",
    ),
    pytest.param(
        edited(created_doc(), "type", "Created"),
        "type",
        '"created", "updated"',
        id="change-type-case",
    ),
    pytest.param(edited(created_doc(), "id", delete=True), "id", "missing", id="no-id"),
    pytest.param(edited(created_doc(), "id", 7), "id", "string", id="id-number"),
    pytest.param(
        edited(created_doc(), "parentId", 7), "parentId", "string or null", id="parent-number"
    ),
    pytest.param(
        edited(created_doc(), "createdAt", delete=True), "createdAt", "missing", id="no-createdAt"
    ),
    pytest.param(
        edited(created_doc(), "createdAt", "yesterday"), "createdAt", "RFC 3339", id="bad-createdAt"
    ),
    pytest.param(
        edited(created_doc(), "createdAt", 1_700_000_000),
        "createdAt",
        "RFC 3339",
        id="createdAt-number",
    ),
    pytest.param(edited(created_doc(), "event", delete=True), "event", "missing", id="no-event"),
    pytest.param(
        edited(created_doc(), "event", "PushingImage"),
        "event",
        "expected a JSON object",
        id="event-string",
    ),
    pytest.param(
        edited(created_doc(), "event.type", delete=True),
        "event.type",
        "missing",
        id="no-event-type",
    ),
    pytest.param(
        edited(created_doc(), "event.type", 3),
        "event.type",
        "non-empty string",
        id="event-type-number",
    ),
    pytest.param(
        edited(created_doc(), "event.image", delete=True), "event.image", "missing", id="no-image"
    ),
    pytest.param(
        edited(created_doc(), "event.image", ["api"]),
        "event.image",
        "expected str",
        id="image-list",
    ),
    pytest.param(
        edited(created_doc(), "event.progress", "half"),
        "event.progress",
        "expected a JSON object",
        id="progress-string",
    ),
    pytest.param(
        edited(created_doc(), "event.progress.totalLayers", "3"),
        "event.progress.totalLayers",
        "expected int",
        id="layers-string",
    ),
    pytest.param(
        edited(created_doc(), "event.progress.totalLayers", -1),
        "event.progress.totalLayers",
        ">= 0",
        id="layers-negative",
    ),
    pytest.param(
        edited(created_doc(), "event.progress.totalLayers", True),
        "event.progress.totalLayers",
        "expected int",
        id="layers-bool",
    ),
    pytest.param(
        edited(created_doc(), "event.progress.totalLayers", 2.5),
        "event.progress.totalLayers",
        "expected int",
        id="layers-float",
    ),
    pytest.param(
        edited(created_doc(), "event.progress.totalBytes", delete=True),
        "event.progress.totalBytes",
        "missing",
        id="no-total-bytes",
    ),
    pytest.param(
        edited(created_doc(), "event", {"type": "BuildingStack"}),
        "event.stack",
        "missing",
        id="no-stack",
    ),
    pytest.param(
        edited(created_doc(), "event", {"type": "EmptyingBuckets"}),
        "event.bucketNames",
        "missing",
        id="no-bucketNames",
    ),
    pytest.param(
        edited(created_doc(), "event", {"type": "EmptyingBuckets", "bucketNames": "b"}),
        "event.bucketNames",
        "expected",
        id="bucketNames-string",
    ),
    pytest.param(
        edited(created_doc(), "event", {"type": "EmptyingBuckets", "bucketNames": ["a", 1]}),
        "event.bucketNames[1]",
        "expected str",
        id="bucketNames-item",
    ),
    pytest.param(
        edited(created_doc(), "event", {"type": "StackStep", "nextState": []}),
        "event.nextState",
        "expected",
        id="nextState-list",
    ),
    pytest.param(
        edited(
            created_doc(), "event", {"type": "StackStep", "nextState": {}, "suggestedDelayMs": -5}
        ),
        "event.suggestedDelayMs",
        ">= 0",
        id="delay-negative",
    ),
    pytest.param(edited(created_doc(), "state", delete=True), "state", "missing", id="no-state"),
    pytest.param(
        edited(created_doc(), "state", "Success"), "state", "'Success'", id="state-wrong-case"
    ),
    pytest.param(edited(created_doc(), "state", 1), "state", "expected", id="state-number"),
    pytest.param(
        edited(created_doc(), "state", {"failed": None}),
        "state.failed",
        "expected a JSON object",
        id="failed-null",
    ),
    pytest.param(
        edited(created_doc(), "state", {"none": None, "started": None}),
        "state",
        "expected",
        id="two-states",
    ),
    pytest.param(
        edited(created_doc(), "state", {"none": 1}), "state", "expected", id="map-state-value"
    ),
    pytest.param(edited(created_doc(), "seq", -1), "seq", ">= 0", id="seq-negative"),
    pytest.param(edited(created_doc(), "seq", "0"), "seq", ">= 0", id="seq-string"),
    pytest.param(
        edited(FAILED_DOC, "updatedAt", delete=True), "updatedAt", "missing", id="no-updatedAt"
    ),
    pytest.param(
        edited(FAILED_DOC, "newState", delete=True), "newState", "missing", id="no-newState"
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.code", delete=True),
        "newState.failed.error.code",
        "missing",
        id="error-no-code",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.message", 5),
        "newState.failed.error.message",
        "expected a string",
        id="error-message-number",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.retryable", "no"),
        "newState.failed.error.retryable",
        "true or false",
        id="error-retryable-string",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.hint", 5),
        "newState.failed.error.hint",
        "expected a string",
        id="error-hint-number",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.httpStatusCode", "500"),
        "newState.failed.error.httpStatusCode",
        "integer",
        id="error-status-string",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.source", "boom"),
        "newState.failed.error.source",
        "expected a JSON object",
        id="error-source-string",
    ),
    pytest.param(
        edited(FAILED_DOC, "newState.failed.error.source", {"code": "Y"}),
        "newState.failed.error.source.message",
        "missing",
        id="error-source-incomplete",
    ),
    pytest.param(
        edited(example_named("updated"), "event", delete=True),
        "event",
        "missing",
        id="updated-no-event",
    ),
]


class TestMalformedInput:
    @pytest.mark.parametrize(("text", "path", "reason"), MALFORMED_TEXTS)
    def test_malformed_text_raises_wire_format_error(self, text, path, reason):
        """Text that is not a JSON object is a WireFormatError at ``<document>``."""
        with pytest.raises(WireFormatError) as info:
            loads(text)
        assert path == info.value.path
        assert reason in info.value.reason

    @pytest.mark.parametrize(("doc", "path", "reason"), MALFORMED_DOCS)
    def test_malformed_document_names_the_field_and_the_reason(self, doc, path, reason):
        """A missing or wrongly typed field is a WireFormatError whose path and message name it."""
        for read in (lambda: from_dict(copy.deepcopy(doc)), lambda: loads(json.dumps(doc))):
            with pytest.raises(WireFormatError) as info:
                read()
            assert path == info.value.path
            assert reason in info.value.reason
            assert str(info.value).startswith(f"{path}: ")
            assert isinstance(info.value, ValueError)

    def test_a_late_error_leaves_nothing_behind(self):
        """A document bad only in its last field raises, returns nothing and leaves the input as it was."""
        doc = edited(FAILED_DOC, "newState.failed.error.source", {"code": "Y", "message": "m"})
        before = copy.deepcopy(doc)
        results = []
        with pytest.raises(WireFormatError) as info:
            results.append(from_dict(doc))
        assert "newState.failed.error.source.retryable" == info.value.path
        assert [] == results
        assert before == doc

    def test_bytes_input_is_read_like_text(self):
        """``loads`` takes bytes too, and invalid UTF-8 is a WireFormatError."""
        text = json.dumps(example_named("updated")).encode()
        assert from_dict(example_named("updated")) == loads(text)
        with pytest.raises(WireFormatError) as info:
            loads(b'{"type": "\xff"}')
        assert "<document>" == info.value.path

    @pytest.mark.parametrize(
        ("doc", "cls", "path"),
        [
            ({"code": "X", "message": "m", "internal": False}, AlienError, "retryable"),
            (
                {"code": "X", "message": "m", "retryable": 1, "internal": False},
                AlienError,
                "retryable",
            ),
            ([], AlienError, "<document>"),
            ({"parent_id": None}, EventHandle, "id"),
            ({"id": "a", "parent_id": 3}, EventHandle, "parent_id"),
            ({"id": ""}, EventHandle, "id"),
            ("Failed", EventState, "<document>"),
            ({"type": "BuildingStack"}, AlienEvent.BuildingStack, "stack"),
            ({"stack": "s"}, Event, "type"),
            (example_named("updated"), Created, "type"),
        ],
    )
    def test_other_types_raise_wire_format_error_too(self, doc, cls, path):
        """Errors, handles, states and events read by ``from_dict`` fail the same way."""
        with pytest.raises(WireFormatError) as info:
            from_dict(doc, cls)
        assert path == info.value.path

    def test_out_of_range_status_code_names_its_field(self):
        """An httpStatusCode outside 100..599 is a WireFormatError at that field."""
        doc = edited(FAILED_DOC, "newState.failed.error.httpStatusCode", 700)
        with pytest.raises(WireFormatError) as info:
            from_dict(doc)
        assert "newState.failed.error.httpStatusCode" == info.value.path
        assert "700" in info.value.reason

    def test_deep_source_chain_raises_only_wire_format_error(self):
        """A deeply nested error chain is read or refused with WireFormatError, never RecursionError."""
        depth = 1000
        link = '{"code":"X","message":"m","retryable":false,"internal":false,"source":'
        text = (
            '{"type":"stateChanged","id":"x","updatedAt":"2020-01-01T00:00:00Z",'
            '"newState":{"failed":{"error":' + link * depth + "null" + "}" * depth + "}}}"
        )
        with contextlib.suppress(WireFormatError):
            loads(text)

    def test_empty_parent_id_round_trips(self):
        """A change or handle with an empty-string parent id reads back as written."""
        change = ROOT_CREATED.replace(parent_id="")
        assert change == loads(dumps(change))
        handle = EventHandle("a", "")
        assert handle == from_dict(to_dict(handle), EventHandle)

    @SETTINGS
    @given(
        JSON_VALUES,
        st.sampled_from(
            [
                EventChange,
                Created,
                Updated,
                StateChanged,
                Event,
                AlienError,
                EventHandle,
                EventState,
                ImageShipped,
                *ALIEN_EVENT_TYPES,
            ]
        ),
    )
    def test_random_json_raises_only_wire_format_error(self, value, cls):
        """Any JSON value read as any wire type either parses or raises WireFormatError."""
        with contextlib.suppress(WireFormatError):
            from_dict(value, cls)
        with contextlib.suppress(WireFormatError):
            loads(json.dumps(value))

    @SETTINGS
    @given(st.text() | st.binary())
    def test_random_text_raises_only_wire_format_error(self, text):
        """Any text or bytes given to ``loads`` either parses or raises WireFormatError."""
        with contextlib.suppress(WireFormatError):
            loads(text)

    @SETTINGS
    @given(st.sampled_from([e["json"] for e in EXAMPLES if "change" == e["kind"]]), st.data())
    def test_mutated_examples_raise_only_wire_format_error(self, example, data):
        """A golden change with any node replaced by random JSON parses (and round-trips) or raises WireFormatError."""
        paths = list(json_paths(example))
        path = data.draw(st.sampled_from(paths))
        doc = replaced(example, path, data.draw(JSON_VALUES))
        try:
            change = loads(json.dumps(doc))
        except WireFormatError:
            return
        assert change == from_dict(to_dict(change))
        assert change == loads(dumps(change))


def json_paths(node: Any, path: tuple[Any, ...] = ()):
    """Yield the path of every node of a JSON value (the root first)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from json_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from json_paths(value, (*path, index))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return a copy of ``doc`` with the node at ``path`` replaced by ``value``."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


# -- round-trip properties ------------------------------------------------------------------


class TestRoundTripProperties:
    @SETTINGS
    @given(changes_of(ANY_EVENTS))
    def test_changes_round_trip_through_text(self, change):
        """``loads(dumps(change)) == change`` for random changes of the 31 types and user types."""
        assert change == loads(dumps(change))
        assert change == from_dict(to_dict(change))
        assert change == from_dict(to_dict(change), type(change))

    @SETTINGS
    @given(ANY_EVENTS)
    def test_events_round_trip(self, event):
        """``from_dict(to_dict(event), type(event)) == event`` for random events."""
        assert event == from_dict(to_dict(event), type(event))
        assert event == from_dict(json.loads(dumps(event)), Event)

    @SETTINGS
    @given(ERRORS)
    def test_errors_round_trip(self, error):
        """``from_dict(to_dict(error), AlienError) == error`` for random error chains."""
        assert error == from_dict(to_dict(error), AlienError)
        assert error == from_dict(json.loads(dumps(error)), AlienError)

    @SETTINGS
    @given(IDS, PARENTS)
    def test_handles_round_trip(self, handle_id, parent_id):
        """``from_dict(to_dict(handle), EventHandle) == handle`` for random ids and parents."""
        handle = EventHandle(handle_id, parent_id)
        assert handle == from_dict(to_dict(handle), EventHandle)
        assert handle == from_dict(json.loads(dumps(handle)), EventHandle)

    @pytest.mark.parametrize("state", list(EventState))
    def test_states_round_trip(self, state):
        """Each state reads back from its JSON as itself."""
        assert state is from_dict(to_dict(state), EventState)

    def test_noop_handle_is_written_with_its_id_and_reads_back_live(self):
        """The no-op handle writes ``{"id":"noop","parent_id":null}``; as in Rust it reads back not no-op."""
        noop = EventHandle.noop()
        assert {"id": "noop", "parent_id": None} == to_dict(noop)
        read = from_dict(to_dict(noop), EventHandle)
        assert "noop" == read.id
        assert False is read.is_noop


# -- the cattrs converter -------------------------------------------------------------------


class TestConverter:
    @pytest.mark.parametrize("example", examples_of("change"))
    def test_unstructure_matches_to_dict_for_examples(self, example):
        """``converter.unstructure(change) == to_dict(change)`` for every golden change."""
        change = from_dict(example["json"])
        assert to_dict(change) == converter.unstructure(change)
        assert to_dict(change) == converter.unstructure(change, type(change))
        assert to_dict(change) == converter.unstructure(change, EventChange)

    def test_unstructure_matches_to_dict_for_produced_changes(self):
        """The converter writes every change the bus makes as ``to_dict`` does."""
        changes = produced_changes(
            REALISTIC[AlienEvent.PushingImage], MINIMAL[AlienEvent.PushingImage]
        )
        assert [to_dict(c) for c in changes] == converter.unstructure(changes)

    def test_unstructure_matches_to_dict_for_other_wire_types(self):
        """Events, errors, handles and states unstructure to their wire JSON."""
        for value in (
            *REALISTIC.values(),
            SHIPPED,
            CHAINED_ERROR,
            EventHandle("a", "b"),
            *EventState,
        ):
            assert to_dict(value) == converter.unstructure(value)

    def test_structure_reads_the_wire_format(self):
        """``converter.structure`` reads changes, events, errors, handles, states and lists of them."""
        doc = example_named("created_root_started")
        assert from_dict(doc) == converter.structure(doc, Created)
        assert from_dict(doc) == converter.structure(doc, EventChange)
        assert [from_dict(doc)] == converter.structure([doc], list[Created])
        assert SHIPPED == converter.structure(to_dict(SHIPPED), ImageShipped)
        assert SHIPPED == converter.structure(to_dict(SHIPPED), Event)
        assert CHAINED_ERROR == converter.structure(to_dict(CHAINED_ERROR), AlienError)
        assert EventHandle("a", None) == converter.structure(
            {"id": "a", "parent_id": None}, EventHandle
        )
        assert EventState.STARTED is converter.structure("started", EventState)

    def test_structure_raises_wire_format_error(self):
        """Malformed input through the converter raises WireFormatError, not a cattrs error."""
        with pytest.raises(WireFormatError) as info:
            converter.structure(edited(created_doc(), "createdAt", delete=True), Created)
        assert "createdAt" == info.value.path
        with pytest.raises(WireFormatError):
            converter.structure(example_named("updated"), Created)

    def test_registered_hooks_extend_the_wire_format_both_ways(self):
        """Hooks registered on ``converter`` write and read a custom field type of a user event."""
        teach_converter_versions()
        released = Released(
            version=Version(1, 2, 3), previous=Version(1, 2), history=[Version(1, 0), Version(1, 1)]
        )
        expected = {
            "type": "wire-test.Released",
            "version": "1.2.3",
            "previous": "1.2",
            "history": ["1.0", "1.1"],
        }
        assert expected == to_dict(released)
        assert expected == json.loads(dumps(released))
        assert expected == converter.unstructure(released)
        assert released == from_dict(expected, Released)
        assert released == from_dict(expected, Event)
        assert released == converter.structure(expected, Released)
        assert Released(version=Version(2)) == from_dict(
            {"type": "wire-test.Released", "version": "2"}, Event
        )

    def test_registered_hooks_work_inside_changes(self, bus, recorder):
        """A change carrying an event with a hooked field type round-trips through the text form."""
        teach_converter_versions()
        with bus:
            handle = Released(version=Version(1)).emit(EventState.STARTED)
            handle.update(Released(version=Version(1, 1), previous=Version(1)))
        for change in recorder.changes:
            assert change == loads(dumps(change))
        assert "1.1" == json.loads(dumps(recorder.changes[1]))["event"]["version"]

    def test_a_failing_structure_hook_is_a_wire_format_error(self):
        """A hook that cannot read the value gives a WireFormatError naming the field."""
        teach_converter_versions()
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "wire-test.Released", "version": "1.x"}, Event)
        assert "version" == info.value.path
        assert "Version" in info.value.reason
        assert "invalid literal for int()" in info.value.reason
        with pytest.raises(WireFormatError) as info:
            from_dict({"type": "wire-test.Released", "version": "1", "history": ["2", "b"]}, Event)
        assert "history[1]" == info.value.path

    def test_unstructuring_something_else_as_an_event_is_a_type_error(self):
        """``converter.unstructure(x, Event)`` with ``x`` not an event is a TypeError naming its type."""
        with pytest.raises(TypeError) as info:
            converter.unstructure("BuildingStack", AlienEvent.BuildingStack)
        assert "expected an event, got str" == str(info.value)

    def test_to_dict_hands_other_values_to_the_converter(self):
        """``to_dict`` of a list of changes, or of a hooked type, gives what the converter gives."""
        teach_converter_versions()
        changes = produced_changes(
            REALISTIC[AlienEvent.BuildingStack], MINIMAL[AlienEvent.BuildingStack]
        )
        assert [to_dict(change) for change in changes] == to_dict(changes)
        assert [to_dict(SHIPPED), "1.2"] == to_dict([SHIPPED, Version(1, 2)])
        assert "3.1" == to_dict(Version(3, 1))

    def test_from_dict_hands_other_types_to_the_converter(self):
        """``from_dict`` with a type it does not know itself reads through the converter's hooks."""
        teach_converter_versions()
        changes = produced_changes(
            REALISTIC[AlienEvent.BuildingStack], MINIMAL[AlienEvent.BuildingStack]
        )
        assert changes == from_dict([to_dict(change) for change in changes], list[EventChange])
        assert [SHIPPED] == from_dict([to_dict(SHIPPED)], list[Event])
        assert Version(3, 1) == from_dict("3.1", Version)

    def test_from_dict_of_a_list_type_raises_wire_format_error_for_a_bad_item(self):
        """``from_dict`` of a list of events with one malformed item raises WireFormatError at it."""
        with pytest.raises(WireFormatError) as info:
            from_dict([to_dict(SHIPPED), {"type": "wire-test.ImageShipped"}], list[Event])
        assert info.value.path.startswith("[1].")

    def test_from_dict_of_a_plain_attrs_class_reports_a_value_cattrs_refuses(self):
        """A value cattrs itself refuses (not our WireFormatError) is reported at its attribute."""

        @attrs.frozen
        class Counter:
            count: int

        with pytest.raises(WireFormatError) as info:
            from_dict({"count": "many"}, Counter)
        assert "count" == info.value.path
        assert "many" in info.value.reason

    def test_from_dict_of_a_plain_attrs_class_names_the_attribute_and_index(self):
        """A bad event inside a plain attrs class's list field is reported at ``field[index].key``."""

        @attrs.frozen
        class Shipment:
            events: list[Event]

        with pytest.raises(WireFormatError) as info:
            from_dict({"events": [to_dict(SHIPPED), {"type": "BuildingStack"}]}, Shipment)
        assert ("events[1].stack", "required field is missing") == (
            info.value.path,
            info.value.reason,
        )


# -- values orjson refuses --------------------------------------------------------------------

BEYOND_64_BITS = st.integers(max_value=-(2**63) - 1) | st.integers(min_value=2**64)


def counted_change(count: int, extra: Any = None) -> Created:
    """The Created change a bus makes for ``Counted(count, extra)``."""
    recorder = RecordingHandler()
    with EventBus([recorder]):
        Counted(count=count, extra=extra).emit()
    (change,) = recorder.changes
    return change


class TestValuesOrjsonRefuses:
    def test_an_int_past_64_bits_is_written_exactly_as_compact_utf8_json(self):
        """An int orjson refuses is written with all its digits, compact, and text stays unescaped."""
        event = Counted(count=2**70, extra={"note": "café ☕", "xs": [1.5, None, True, -(2**65)]})
        assert (
            '{"type":"wire-test.Counted","count":1180591620717411303424,'
            '"extra":{"note":"café ☕","xs":[1.5,null,true,-36893488147419103232]}}'
        ) == dumps(event)

    @SETTINGS
    @given(BEYOND_64_BITS, st.text(max_size=8))
    def test_changes_with_ints_past_64_bits_are_written_exactly(self, count, note):
        """``dumps`` and ``dump_change_line`` write any int past 64 bits exactly, and ``from_dict`` reads it back."""
        change = counted_change(count, {"note": note, "big": [count]})

        text = dumps(change)
        line = dump_change_line(change)

        assert to_dict(change) == json.loads(text)
        assert (text + "\n").encode() == line
        assert 1 == line.count(b"\n")
        assert change == from_dict(json.loads(line))

    def test_an_error_context_with_a_huge_int_is_written_exactly(self):
        """An AlienError whose context holds an int past 64 bits is written with every digit."""
        error = AlienError(code="OVERFLOW", message="too big", context={"value": 10**30})
        assert {"value": 10**30} == json.loads(dumps(error))["context"]
        assert error == from_dict(json.loads(dumps(error)), AlienError)

    @pytest.mark.parametrize("count", [2**64, -(2**63) - 1, 10**30])
    def test_loads_reads_back_what_dumps_wrote_for_ints_past_64_bits(self, count):
        """A change holding an int past 64 bits reads back equal from its own text and line."""
        change = counted_change(count, {"big": count})
        assert change == loads(dumps(change))
        assert change == loads(dump_change_line(change))

    @pytest.mark.parametrize(
        "text",
        [
            '{"type": "updated", "id": "e", "updatedAt": NaN, "n": 1234567890123456789}',
            '{"type": "updated", "id": "e", "x": 1e400, "n": 1234567890123456789}',
        ],
    )
    def test_long_numbers_do_not_let_non_json_through(self, text):
        """Text read exactly for its long integers still refuses NaN and out-of-range floats."""
        with pytest.raises(WireFormatError, match="not JSON"):
            loads(text)


# -- a smoke check that the bus and the wire agree on every kind of change ------------------


class TestBusOutput:
    def test_bus_changes_read_back_equal(self):
        """Every change a bus makes for each of the 31 types reads back equal from its text."""
        for cls, event in REALISTIC.items():
            for change in produced_changes(event, MINIMAL[cls]):
                assert change == loads(dumps(change))

    def test_recorded_changes_survive_a_json_lines_file(self, tmp_path):
        """Changes written one per line and read back give the same sequence."""
        recorder = RecordingHandler()
        with EventBus([recorder]), AlienEvent.BuildingStack(stack="s").in_scope():
            AlienEvent.PushingImage(image="api").emit()
        path = tmp_path / "changes.jsonl"
        path.write_text("".join(dumps(c) + "\n" for c in recorder.changes), encoding="utf-8")
        lines = path.read_text(encoding="utf-8").splitlines()
        assert recorder.changes == [loads(line) for line in lines]
