"""
Tests of the change records a bus delivers (``alien_events_api._changes``).

``Created``, ``Updated`` and ``StateChanged``: checks, equality, pickling, timestamps.
"""

import copy
import pickle
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    EventState,
    EventValidationError,
    PushProgress,
    StateChanged,
    Updated,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
EVENT = AlienEvent.BuildingStack(stack="s")
ERROR = AlienError("E", "failed", source=AlienError("S", "because"))

FIXED_OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59, seconds=-59),
        max_value=timedelta(hours=23, minutes=59, seconds=59),
    ),
)
# Years 2..9998, so that the UTC instant of any offset stays inside datetime's range.
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1),  # noqa: DTZ001  (hypothesis bounds are naive)
    max_value=datetime(9998, 12, 31),  # noqa: DTZ001
    timezones=st.timezones() | FIXED_OFFSETS | st.just(UTC),
)


def created(**changes) -> Created:
    values = {"id": "e1", "created_at": WHEN, "event": EVENT}
    values.update(changes)
    return Created(**values)


def updated(**changes) -> Updated:
    values = {"id": "e1", "updated_at": WHEN, "event": EVENT}
    values.update(changes)
    return Updated(**values)


def state_changed(**changes) -> StateChanged:
    values = {"id": "e1", "updated_at": WHEN, "new_state": EventState.SUCCESS}
    values.update(changes)
    return StateChanged(**values)


MAKERS = {"Created": created, "Updated": updated, "StateChanged": state_changed}
TIME_FIELD = {"Created": "created_at", "Updated": "updated_at", "StateChanged": "updated_at"}
KINDS = sorted(MAKERS)


def one_of_each() -> list:
    return [
        created(parent_id="p", state=EventState.FAILED, error=ERROR),
        updated(event=AlienEvent.PushingImage(image="i", progress=PushProgress("p", 1, 2, 3, 4))),
        state_changed(new_state=EventState.FAILED, error=ERROR, seq=7),
    ]


class TestConstruction:
    def test_created_fields_and_defaults(self):
        """``Created`` keeps its fields; parent, error default to ``None``, state NONE, seq/epoch 0."""
        change = created()
        assert {
            "id": "e1",
            "parent_id": None,
            "created_at": WHEN,
            "event": EVENT,
            "state": EventState.NONE,
            "error": None,
            "seq": 0,
            "epoch": 0,
        } == change.as_dict()

    def test_updated_fields_and_defaults(self):
        """``Updated`` keeps its fields; seq defaults to 1."""
        assert {
            "id": "e1",
            "updated_at": WHEN,
            "event": EVENT,
            "seq": 1,
            "epoch": 0,
        } == updated().as_dict()

    def test_state_changed_fields_and_defaults(self):
        """``StateChanged`` keeps its fields; error defaults to ``None`` and seq to 1."""
        assert {
            "id": "e1",
            "updated_at": WHEN,
            "new_state": EventState.SUCCESS,
            "error": None,
            "seq": 1,
            "epoch": 0,
        } == state_changed().as_dict()

    @pytest.mark.parametrize("kind", KINDS)
    def test_seq_may_be_none(self, kind):
        """A change read from a producer that sends no ``seq`` (Alien) has ``seq`` ``None``."""
        assert MAKERS[kind](seq=None).seq is None

    @pytest.mark.parametrize(
        "make",
        [
            lambda: Created("e1", None, WHEN, EVENT),  # type: ignore[misc]
            lambda: Updated("e1", WHEN, EVENT),  # type: ignore[misc]
            lambda: StateChanged("e1", WHEN, EventState.SUCCESS),  # type: ignore[misc]
        ],
        ids=KINDS,
    )
    def test_fields_are_keyword_only(self, make):
        """The checked constructors take keywords only, so fields cannot be swapped by position."""
        with pytest.raises(TypeError):
            make()

    @pytest.mark.parametrize(
        ("kind", "field", "value", "reason_start"),
        [
            ("Created", "id", "", "expected a non-empty str"),
            ("Created", "id", 1, "expected a non-empty str"),
            ("Created", "parent_id", 1, "expected str or None"),
            ("Created", "created_at", "2024-05-06T07:08:09Z", "expected an aware datetime"),
            ("Created", "created_at", 1715000000, "expected an aware datetime"),
            ("Created", "created_at", date(2024, 5, 6), "expected an aware datetime"),
            ("Created", "event", "BuildingStack", "expected an Event"),
            ("Created", "event", PushProgress("p", 0, 0, 0, 0), "expected an Event"),
            ("Created", "state", "started", "expected an EventState"),
            ("Created", "error", ValueError("x"), "expected an AlienError or None"),
            ("Created", "seq", -1, "expected an int >= 0"),
            ("Created", "seq", True, "expected an int >= 0"),
            ("Created", "seq", 1.0, "expected an int >= 0"),
            ("Updated", "id", "", "expected a non-empty str"),
            ("Updated", "updated_at", None, "expected an aware datetime"),
            ("Updated", "event", None, "expected an Event"),
            ("Updated", "seq", "1", "expected an int >= 0"),
            ("StateChanged", "id", None, "expected a non-empty str"),
            ("StateChanged", "updated_at", WHEN.timestamp(), "expected an aware datetime"),
            ("StateChanged", "new_state", "success", "expected an EventState"),
            ("StateChanged", "new_state", None, "expected an EventState"),
            ("StateChanged", "error", "boom", "expected an AlienError or None"),
            ("StateChanged", "seq", -5, "expected an int >= 0"),
        ],
    )
    def test_bad_field_is_refused(self, kind, field, value, reason_start):
        """Every field is checked: a bad value is refused naming the record, field and reason."""
        with pytest.raises(EventValidationError) as caught:
            MAKERS[kind](**{field: value})
        assert (kind, field) == (caught.value.cls_name, caught.value.field)
        assert caught.value.reason.startswith(reason_start), caught.value.reason

    @pytest.mark.parametrize("kind", KINDS)
    def test_naive_datetime_is_refused(self, kind):
        """A naive datetime is refused: a change's time must say its zone."""
        with pytest.raises(EventValidationError) as caught:
            MAKERS[kind](**{TIME_FIELD[kind]: datetime(2024, 5, 6)})  # noqa: DTZ001
        assert TIME_FIELD[kind] == caught.value.field
        assert "expected an aware datetime (with tzinfo), got a naive one" == caught.value.reason

    def test_unchecked_builds_the_same_record(self):
        """The ``unchecked`` fast paths build records equal to the checked constructors' ones."""
        micros = (WHEN - EPOCH) // timedelta(microseconds=1)
        assert created(parent_id="p", error=ERROR, seq=3) == Created.unchecked(
            "e1", "p", micros, EVENT, EventState.NONE, ERROR, 3
        )
        assert updated(seq=2) == Updated.unchecked("e1", micros, EVENT, 2)
        assert state_changed(seq=4) == StateChanged.unchecked(
            "e1", micros, EventState.SUCCESS, None, 4
        )


class TestRecordBehaviour:
    def test_records_are_immutable(self):
        """Fields of a change cannot be set."""
        change = created()
        with pytest.raises(AttributeError):
            change.id = "other"  # type: ignore[misc]

    def test_equal_when_type_and_fields_are_equal(self):
        """Two changes of one type with equal fields are equal and hash alike."""
        assert created(parent_id="p") == created(parent_id="p")
        assert hash(created(parent_id="p")) == hash(created(parent_id="p"))
        assert updated() == updated()
        assert state_changed(error=ERROR) == state_changed(error=ERROR)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("id", "e2"),
            ("parent_id", "p"),
            ("created_at", WHEN + timedelta(microseconds=1)),
            ("event", AlienEvent.BuildingStack(stack="t")),
            ("state", EventState.STARTED),
            ("error", ERROR),
            ("seq", 1),
        ],
    )
    def test_any_different_field_makes_them_unequal(self, field, value):
        """Changes that differ in any one field are not equal."""
        assert created() != created(**{field: value})

    def test_a_created_never_equals_an_updated(self):
        """Changes of different types are never equal, even for the same event and time."""
        assert created() != updated()
        assert updated() != created()
        assert state_changed() != updated()
        assert 3 == len({created(), updated(), state_changed()})

    @pytest.mark.parametrize("change", one_of_each(), ids=KINDS)
    def test_never_equal_to_a_plain_tuple(self, change):
        """A change is not equal to a plain tuple of the same items, either way round."""
        assert change != tuple(change)
        assert tuple(change) != change

    def test_equal_for_the_same_instant_in_any_zone(self):
        """The same instant written in two time zones gives equal changes."""
        tokyo = timezone(timedelta(hours=9))
        assert created() == created(created_at=WHEN.astimezone(tokyo))

    @pytest.mark.parametrize("change", one_of_each(), ids=KINDS)
    def test_pickle_round_trip(self, change):
        """A change survives pickling as an equal change of the same type."""
        restored = pickle.loads(pickle.dumps(change))  # noqa: S301  (our own data)
        assert type(change) is type(restored)
        assert change == restored
        assert change.as_dict() == restored.as_dict()

    @pytest.mark.parametrize("change", one_of_each(), ids=KINDS)
    def test_copies_are_the_record_itself(self, change):
        """Copying an immutable change returns the same object."""
        assert change is copy.copy(change)
        assert change is copy.deepcopy(change)

    def test_repr_names_every_field(self):
        """The repr names the record and each field with its value, in field order."""
        text = repr(state_changed(seq=4, epoch=2))
        assert text.startswith("StateChanged(id='e1', updated_at=datetime.datetime(2024, 5, 6,")
        assert text.endswith(
            "new_state=<EventState.SUCCESS: 'success'>, error=None, seq=4, epoch=2)"
        )

    def test_match_patterns(self):
        """Changes work in ``match`` statements, by keyword and by position."""
        results = []
        for change in one_of_each():
            match change:
                case Created(event_id, parent, _, _, EventState.FAILED):
                    results.append(("created", event_id, parent))
                case Updated(id=event_id, event=AlienEvent.PushingImage(image=image)):
                    results.append(("updated", event_id, image))
                case StateChanged(new_state=EventState.FAILED, error=AlienError(code=code)):
                    results.append(("failed", code))
        assert [("created", "e1", "p"), ("updated", "e1", "i"), ("failed", "E")] == results


class TestReplaceAndAsDict:
    def test_replace_returns_a_changed_copy(self):
        """``replace`` returns a new change with the given fields replaced, the original unchanged."""
        original = created()
        changed = original.replace(state=EventState.STARTED, seq=5)
        assert (EventState.STARTED, 5) == (changed.state, changed.seq)
        assert (EventState.NONE, 0) == (original.state, original.seq)
        assert original.replace() == original

    def test_replace_checks_the_new_values(self):
        """``replace`` checks values like the constructor."""
        with pytest.raises(EventValidationError, match=r"StateChanged\.new_state"):
            state_changed().replace(new_state="failed")
        with pytest.raises(EventValidationError, match=r"Updated\.updated_at"):
            updated().replace(updated_at=datetime(2024, 1, 1))  # noqa: DTZ001

    def test_replace_refuses_unknown_fields(self):
        """``replace`` with a field the record does not have is a ``TypeError`` naming it."""
        with pytest.raises(TypeError, match=r"Updated has no field\(s\) \['state'\]"):
            updated().replace(state=EventState.SUCCESS)

    @pytest.mark.parametrize("change", one_of_each(), ids=KINDS)
    def test_as_dict_rebuilds_the_change(self, change):
        """``as_dict`` gives the fields in order, and they rebuild an equal change."""
        values = change.as_dict()
        assert list(type(change).__match_args__) == list(values)
        assert change == type(change)(**values)


class TestTimestamps:
    @pytest.mark.parametrize("kind", KINDS)
    @settings(deadline=None)
    @given(when=AWARE)
    def test_any_aware_datetime_round_trips(self, kind, when):
        """Any aware datetime in any zone reads back as the same instant, in UTC, to the µs."""
        change = MAKERS[kind](**{TIME_FIELD[kind]: when})
        read = getattr(change, TIME_FIELD[kind])
        assert when.astimezone(UTC) == read
        assert timedelta(0) == read.utcoffset()
        assert EPOCH + timedelta(microseconds=change.timestamp_micros) == read

    @settings(deadline=None)
    @given(when=AWARE)
    def test_round_trip_survives_replace_and_pickle(self, when):
        """A change's time is unchanged by ``replace`` and by a pickle round trip."""
        change = created(created_at=when)
        again = pickle.loads(pickle.dumps(change.replace(seq=1)))  # noqa: S301
        assert change.created_at == again.created_at

    @settings(deadline=None)
    @given(st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999))
    def test_micros_round_trip(self, micros):
        """Any microsecond from year 1 to 9999 (UTC) reads back as the same number."""
        change = Created.unchecked("e1", None, micros, EVENT, EventState.NONE, None)
        assert micros == created(created_at=change.created_at).timestamp_micros

    def test_timestamp_micros(self):
        """``timestamp_micros`` is the time in microseconds since the Unix epoch."""
        assert 1_714_979_289_123_456 == created().timestamp_micros
        assert 1_714_979_289_123_456 == updated().timestamp_micros
        assert 1_714_979_289_123_456 == state_changed().timestamp_micros

    @pytest.mark.parametrize(
        "when",
        [
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        ],
        ids=["before-year-1-in-utc", "after-year-9999-in-utc"],
    )
    def test_accepted_time_can_always_be_read_back(self, when):
        """A time the constructor accepts can always be read back (or it is refused up front)."""
        try:
            change = created(created_at=when)
        except EventValidationError:
            return
        assert when == change.created_at
        assert repr(change)
