"""
Tests of Alien's own event types (``alien_events_api._alien_events``).

The 31 ``AlienEvent`` variants, checked against the reference table, and ``PushProgress``.
"""

import inspect

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    ALIEN_EVENT_TYPES,
    AlienEvent,
    Event,
    EventValidationError,
    PushProgress,
    lookup_event_type,
)
from alien_events_api._event import OMIT_IF_DEFAULT, WIRE_NAME


@attrs.frozen
class Kind:
    """What the reference says about one kind of field, with a good and a bad value."""

    required: bool
    sample: object
    stored: object
    bad: object
    default: object = None


PROGRESS = PushProgress("push", 1, 2, 30, 40)
STATE = {"platform": "aws", "resources": {}, "resourcePrefix": "p"}

STR = Kind(required=True, sample="v", stored="v", bad=1)
OPT_STR = Kind(required=False, sample="p", stored="p", bad=1)
STRINGS_OR_EMPTY = Kind(required=False, sample=["a", "b"], stored=("a", "b"), bad="ab", default=())
STRINGS = Kind(required=True, sample=["b1"], stored=("b1",), bad="b1")
OPT_PROGRESS = Kind(required=False, sample=PROGRESS, stored=PROGRESS, bad={"operation": "push"})
JSON_OBJECT = Kind(required=True, sample=STATE, stored=STATE, bad="aws")
OPT_UINT = Kind(required=False, sample=250, stored=250, bad=-1)

# Reference section 1.3, in declaration order: (variant, ((field, kind), ...)).
REFERENCE: tuple[tuple[str, tuple[tuple[str, Kind], ...]], ...] = (
    ("LoadingConfiguration", ()),
    ("Finished", ()),
    ("BuildingStack", (("stack", STR),)),
    ("RunningPreflights", (("stack", STR), ("platform", STR))),
    ("DownloadingAlienRuntime", (("target_triple", STR), ("url", STR))),
    (
        "BuildingResource",
        (
            ("resource_name", STR),
            ("resource_type", STR),
            ("related_resources", STRINGS_OR_EMPTY),
        ),
    ),
    ("BuildingImage", (("image", STR),)),
    ("PushingImage", (("image", STR), ("progress", OPT_PROGRESS))),
    ("PushingStack", (("stack", STR), ("platform", STR), ("destination", OPT_STR))),
    ("PushingResource", (("resource_name", STR), ("resource_type", STR))),
    ("CreatingRelease", (("project", STR),)),
    ("CompilingCode", (("language", STR), ("progress", OPT_STR))),
    ("StackStep", (("next_state", JSON_OBJECT), ("suggested_delay_ms", OPT_UINT))),
    ("GeneratingCloudFormationTemplate", ()),
    ("GeneratingTemplate", (("platform", STR),)),
    ("ProvisioningAgent", (("agent_id", STR), ("release_id", STR))),
    ("UpdatingAgent", (("agent_id", STR), ("release_id", STR))),
    ("DeletingAgent", (("agent_id", STR), ("release_id", STR))),
    ("DebuggingAgent", (("agent_id", STR), ("debug_session_id", STR))),
    ("PreparingEnvironment", (("strategy_name", STR),)),
    ("DeployingStack", (("stack_name", STR),)),
    ("RunningTestWorker", (("stack_name", STR),)),
    ("CleaningUpStack", (("stack_name", STR), ("strategy_name", STR))),
    ("CleaningUpEnvironment", (("stack_name", STR), ("strategy_name", STR))),
    ("SettingUpPlatformContext", (("platform_name", STR),)),
    ("EnsuringDockerRepository", (("repository_name", STR),)),
    ("DeployingCloudFormationStack", (("cfn_stack_name", STR), ("current_status", STR))),
    ("AssumingRole", (("role_arn", STR),)),
    ("ImportingStackStateFromCloudFormation", (("cfn_stack_name", STR),)),
    ("DeletingCloudFormationStack", (("cfn_stack_name", STR), ("current_status", STR))),
    ("EmptyingBuckets", (("bucket_names", STRINGS),)),
)

VARIANTS = [pytest.param(name, fields, id=name) for name, fields in REFERENCE]
FIELDS = [
    pytest.param(name, field, kind, id=f"{name}.{field}")
    for name, fields in REFERENCE
    for field, kind in fields
]
STR_FIELDS = [(name, field) for name, fields in REFERENCE for field, kind in fields if kind is STR]
PUSH_PROGRESS_COUNTS = ("layers_uploaded", "total_layers", "bytes_uploaded", "total_bytes")


def variant(name: str) -> type[Event]:
    return getattr(AlienEvent, name)  # type: ignore[no-any-return]


def samples(fields, *, required_only=False) -> dict[str, object]:
    return {field: kind.sample for field, kind in fields if kind.required or not required_only}


class TestCatalogue:
    def test_there_are_31_variants_in_declaration_order(self):
        """``ALIEN_EVENT_TYPES`` lists the 31 production variants in Rust's declaration order."""
        assert 31 == len(REFERENCE)
        assert [name for name, _ in REFERENCE] == [cls.__name__ for cls in ALIEN_EVENT_TYPES]

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_variant_is_a_registered_event_type(self, name, fields):
        """Each variant is an ``Event`` under ``AlienEvent``, tagged and registered by its name."""
        cls = variant(name)
        assert issubclass(cls, Event)
        assert f"AlienEvent.{name}" == cls.__qualname__
        assert name == cls.__event_tag__
        assert cls is lookup_event_type(name)

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_fields_are_the_reference_fields_in_order(self, name, fields):
        """Each variant has exactly the fields of the reference table, in the same order."""
        assert [field for field, _ in fields] == [a.name for a in attrs.fields(variant(name))]

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_required_fields_are_those_without_default(self, name, fields):
        """The constructor's parameters without default are exactly the required fields."""
        parameters = inspect.signature(variant(name)).parameters.values()
        required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
        assert [field for field, kind in fields if kind.required] == required

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_optional_fields_take_their_defaults(self, name, fields):
        """Built from its required fields alone, a variant has ``None`` (or ``()``) elsewhere."""
        event = variant(name)(**samples(fields, required_only=True))
        optional = {field: kind.default for field, kind in fields if not kind.required}
        assert optional == {field: getattr(event, field) for field in optional}

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_builds_from_keywords_and_positions(self, name, fields):
        """A variant built by keyword equals one built positionally and stores the values."""
        by_keyword = variant(name)(**samples(fields))
        by_position = variant(name)(*samples(fields).values())
        assert by_keyword == by_position
        assert [kind.stored for _, kind in fields] == [
            getattr(by_keyword, field) for field, _ in fields
        ]

    @pytest.mark.parametrize(("name", "field", "kind"), FIELDS)
    def test_bad_value_is_refused_naming_variant_and_field(self, name, field, kind):
        """A value of the wrong kind is refused with an error naming the variant and field."""
        values = {**samples(next(f for n, f in REFERENCE if n == name)), field: kind.bad}
        with pytest.raises(EventValidationError) as caught:
            variant(name)(**values)
        assert (f"AlienEvent.{name}", field) == (caught.value.cls_name, caught.value.field)

    @pytest.mark.parametrize(("name", "fields"), VARIANTS)
    def test_missing_required_field_is_a_type_error(self, name, fields):
        """Leaving out any required field is a ``TypeError``."""
        for field, kind in fields:
            if kind.required:
                values = samples(fields)
                del values[field]
                with pytest.raises(TypeError, match=field):
                    variant(name)(**values)

    def test_only_two_fields_are_left_out_when_default(self):
        """Only ``related_resources`` and ``destination`` are marked to be omitted at default."""
        omitted = {
            (cls.__name__, a.name)
            for cls in ALIEN_EVENT_TYPES
            for a in attrs.fields(cls)
            if a.metadata.get(OMIT_IF_DEFAULT)
        }
        assert {("BuildingResource", "related_resources"), ("PushingStack", "destination")} == (
            omitted
        )

    def test_no_variant_renames_a_wire_key(self):
        """No variant overrides a wire key: every key is its field name in camelCase."""
        assert [] == [
            (cls.__name__, a.name)
            for cls in ALIEN_EVENT_TYPES
            for a in attrs.fields(cls)
            if WIRE_NAME in a.metadata
        ]

    @settings(deadline=None)
    @given(st.sampled_from(STR_FIELDS), st.text())
    def test_any_str_is_accepted_by_every_str_field(self, where, value):
        """Every str field of every variant accepts any str and stores it unchanged."""
        name, field = where
        fields = next(f for n, f in REFERENCE if n == name)
        event = variant(name)(**{**samples(fields), field: value})
        assert value == getattr(event, field)


class TestAlienEventNamespace:
    def test_cannot_be_instantiated(self):
        """``AlienEvent()`` is a ``TypeError`` that points to building a variant."""
        with pytest.raises(TypeError, match=r"namespace; build a variant"):
            AlienEvent()

    def test_is_marked_final(self):
        """``AlienEvent`` is marked ``typing.final``."""
        assert getattr(AlienEvent, "__final__", False) is True

    def test_is_not_an_event(self):
        """The namespace itself is not an ``Event`` and is not registered."""
        assert not issubclass(AlienEvent, Event)
        assert lookup_event_type("AlienEvent") is None

    def test_unit_variants_are_equal_to_each_other(self):
        """Two instances of a unit variant are equal; different unit variants are not."""
        assert AlienEvent.Finished() == AlienEvent.Finished()
        assert AlienEvent.Finished() != AlienEvent.LoadingConfiguration()

    def test_variants_with_the_same_fields_are_not_equal(self):
        """Variants with identical field values but different types never compare equal."""
        provisioning = AlienEvent.ProvisioningAgent(agent_id="a", release_id="r")
        updating = AlienEvent.UpdatingAgent(agent_id="a", release_id="r")
        assert provisioning != updating
        assert 2 == len({provisioning, updating})

    def test_repr_names_the_namespace(self):
        """A variant's repr starts with ``AlienEvent.`` and shows its fields."""
        assert "AlienEvent.BuildingStack(stack='s')" == repr(AlienEvent.BuildingStack(stack="s"))


class TestVariantFields:
    def test_related_resources_are_stored_as_a_tuple(self):
        """``BuildingResource.related_resources`` takes a list and stores a tuple."""
        event = AlienEvent.BuildingResource(
            resource_name="n", resource_type="container", related_resources=["a", "b"]
        )
        assert ("a", "b") == event.related_resources

    def test_related_resources_items_are_checked(self):
        """A non-str related resource is refused at its index."""
        with pytest.raises(EventValidationError) as caught:
            AlienEvent.BuildingResource(
                resource_name="n",
                resource_type="worker",
                related_resources=["a", 2],  # type: ignore[list-item]
            )
        assert "related_resources[1]" == caught.value.field

    def test_bucket_names_may_be_empty(self):
        """``EmptyingBuckets.bucket_names`` is required but may be empty."""
        assert () == AlienEvent.EmptyingBuckets(bucket_names=[]).bucket_names

    def test_next_state_is_any_json_object(self):
        """``StackStep.next_state`` takes a mapping with str keys and any values."""
        assert STATE == AlienEvent.StackStep(next_state=STATE).next_state

    def test_next_state_keys_must_be_str(self):
        """A mapping with a non-str key is refused for ``StackStep.next_state``."""
        with pytest.raises(EventValidationError) as caught:
            AlienEvent.StackStep(next_state={1: "x"})  # type: ignore[dict-item]
        assert "next_state key" == caught.value.field

    @pytest.mark.parametrize(
        ("value", "reason"),
        [(-1, "expected an int >= 0, got -1"), (True, "expected int or None, got bool (True)")],
    )
    def test_suggested_delay_must_be_a_non_negative_int(self, value, reason):
        """``StackStep.suggested_delay_ms`` refuses negative numbers and bools."""
        with pytest.raises(EventValidationError) as caught:
            AlienEvent.StackStep(next_state={}, suggested_delay_ms=value)
        assert ("suggested_delay_ms", reason) == (caught.value.field, caught.value.reason)

    @settings(deadline=None)
    @given(st.integers(min_value=0))
    def test_suggested_delay_accepts_any_non_negative_int(self, value):
        """``StackStep.suggested_delay_ms`` accepts every int from 0 up."""
        assert (
            value
            == AlienEvent.StackStep(next_state={}, suggested_delay_ms=value).suggested_delay_ms
        )

    def test_progress_must_be_a_push_progress(self):
        """``PushingImage.progress`` refuses a plain dict with the same keys."""
        with pytest.raises(EventValidationError, match=r"progress: expected PushProgress"):
            AlienEvent.PushingImage(
                image="i",
                progress={  # type: ignore[arg-type]
                    "operation": "push",
                    "layers_uploaded": 0,
                    "total_layers": 0,
                    "bytes_uploaded": 0,
                    "total_bytes": 0,
                },
            )


class TestPushProgress:
    def test_fields_in_reference_order(self):
        """``PushProgress`` has the reference's five fields, in order, all required."""
        assert ["operation", *PUSH_PROGRESS_COUNTS] == [a.name for a in attrs.fields(PushProgress)]
        parameters = inspect.signature(PushProgress).parameters.values()
        assert all(p.default is inspect.Parameter.empty for p in parameters)

    def test_is_not_an_event(self):
        """``PushProgress`` is a value inside an event, not an event of its own."""
        assert not isinstance(PROGRESS, Event)
        assert lookup_event_type("PushProgress") is None

    def test_is_frozen_and_compares_by_value(self):
        """``PushProgress`` is frozen and equal to another with the same values."""
        assert PushProgress("push", 1, 2, 30, 40) == PROGRESS
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            PROGRESS.total_layers = 3  # type: ignore[misc]

    @settings(deadline=None)
    @given(st.text(), st.lists(st.integers(min_value=0), min_size=4, max_size=4))
    def test_any_non_negative_counts_are_accepted(self, operation, counts):
        """Every operation string and every count from 0 up is accepted and stored."""
        progress = PushProgress(operation, *counts)
        assert (operation, *counts) == attrs.astuple(progress)

    @settings(deadline=None)
    @given(
        st.sampled_from(PUSH_PROGRESS_COUNTS),
        st.integers(max_value=-1),
    )
    def test_any_negative_count_is_refused(self, field, value):
        """A negative count in any of the four count fields is refused, naming that field."""
        values = dict.fromkeys(PUSH_PROGRESS_COUNTS, 0)
        values[field] = value
        with pytest.raises(EventValidationError) as caught:
            PushProgress(operation="push", **values)
        assert ("PushProgress", field, f"expected an int >= 0, got {value}") == (
            caught.value.cls_name,
            caught.value.field,
            caught.value.reason,
        )

    @pytest.mark.parametrize("field", PUSH_PROGRESS_COUNTS)
    @pytest.mark.parametrize("value", [True, 1.0, "1", None])
    def test_counts_must_be_ints(self, field, value):
        """A count that is not an int (``bool`` included) is refused."""
        values = dict.fromkeys(PUSH_PROGRESS_COUNTS, 0)
        values[field] = value
        with pytest.raises(EventValidationError) as caught:
            PushProgress(operation="push", **values)
        assert field == caught.value.field
        assert caught.value.reason.startswith("expected int, got ")

    def test_operation_must_be_a_str(self):
        """A non-str operation is refused."""
        with pytest.raises(EventValidationError, match=r"PushProgress\.operation: expected str"):
            PushProgress(1, 0, 0, 0, 0)  # type: ignore[arg-type]
