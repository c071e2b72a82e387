"""
Tests of ``EventHandle`` (``alien_events_api._handle``).

The no-op handle, attributes, equality, argument checks, and what its operations deliver.
"""

import asyncio

import pytest

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    EventHandle,
    EventState,
    NoEventBusContext,
    StateChanged,
    Updated,
    current_event,
    set_strict,
)
from alien_events_api._handle import noop_handle
from alien_events_sdk import EventBus, RecordingHandler, set_default_bus

NOT_EVENTS = ["BuildingStack", None, {"type": "Finished"}, AlienEvent.BuildingStack]
NOT_ERRORS = ["boom", None, 500, {"code": "E"}, ValueError]


class TestNoopHandle:
    def test_attributes(self):
        """The no-op handle has id ``"noop"``, no parent, and says it is a no-op."""
        handle = EventHandle.noop()
        assert ("noop", None, True) == (handle.id, handle.parent_id, handle.is_noop)

    def test_is_one_shared_object(self):
        """``EventHandle.noop()`` returns the same object every time."""
        assert EventHandle.noop() is EventHandle.noop()

    def test_repr(self):
        """The no-op handle's repr says so."""
        assert "EventHandle.noop()" == repr(EventHandle.noop())

    def test_has_no_changes_to_number(self):
        """Asking the no-op handle for a ``seq`` is a ``RuntimeError``."""
        with pytest.raises(RuntimeError, match="no-op handle has no changes"):
            EventHandle.noop().next_seq()

    def test_operations_deliver_nothing_even_inside_a_bus(self, bus, recorder):
        """Update, complete, fail and set_state on the no-op handle deliver nothing, even in a bus."""
        handle = EventHandle.noop()
        with bus:
            assert handle.update(AlienEvent.Finished()) is None
            assert handle.complete() is None
            assert handle.fail(AlienError("E", "m")) is None
            assert handle.fail(ValueError("x")) is None
            assert handle.set_state(EventState.STARTED) is None
        assert [] == recorder.changes

    def test_async_operations_deliver_nothing(self, bus, recorder):
        """The async twins on the no-op handle deliver nothing either."""
        handle = EventHandle.noop()

        async def main():
            async with bus:
                await handle.aupdate(AlienEvent.Finished())
                await handle.acomplete()
                await handle.afail(AlienError("E", "m"))
                await handle.afail(KeyError("k"))

        asyncio.run(main())
        assert [] == recorder.changes

    def test_noop_with_a_children_parent_still_looks_like_the_noop_handle(self):
        """A no-op handle that carries the ambient parent for children still has no parent."""
        handle = noop_handle("ambient")
        assert (None, True) == (handle.parent_id, handle.is_noop)
        assert "ambient" == handle.children_parent_id
        assert EventHandle.noop() == handle

    def test_as_parent_keeps_the_ambient_parent(self, bus, recorder):
        """Children emitted under the no-op handle's ``as_parent`` keep the enclosing parent."""
        with bus, AlienEvent.Finished().in_scope() as scope, EventHandle.noop().as_parent():
            child = AlienEvent.BuildingStack(stack="c").emit()
        assert scope.id == child.parent_id

    def test_as_parent_at_top_level_gives_roots(self, bus, recorder):
        """At top level, children under the no-op handle's ``as_parent`` have no parent."""
        with bus, EventHandle.noop().as_parent():
            child = AlienEvent.BuildingStack(stack="c").emit()
        assert child.parent_id is None


class TestConstruction:
    def test_attributes(self):
        """A handle built from an id and parent keeps them and is not a no-op."""
        handle = EventHandle("e1", "p1")
        assert ("e1", "p1", False) == (handle.id, handle.parent_id, handle.is_noop)

    def test_parent_defaults_to_none(self):
        """A handle built from an id alone is a root."""
        assert EventHandle("e1").parent_id is None

    def test_children_parent_is_the_handle(self):
        """Events emitted under a real handle get its id as parent."""
        assert "e1" == EventHandle("e1", "p1").children_parent_id

    def test_repr(self):
        """The repr shows the id and parent id."""
        assert "EventHandle(id='e1', parent_id='p1')" == repr(EventHandle("e1", "p1"))

    @pytest.mark.parametrize("bad_id", ["", None, 1, b"e1"])
    def test_id_must_be_a_non_empty_str(self, bad_id):
        """An id that is not a non-empty ``str`` is a ``TypeError``."""
        with pytest.raises(TypeError, match=r"EventHandle\.id: expected a non-empty str"):
            EventHandle(bad_id)

    @pytest.mark.parametrize("bad_parent", [1, b"p", EventHandle("p")])
    def test_parent_must_be_a_str_or_none(self, bad_parent):
        """A parent id that is neither a ``str`` nor ``None`` is a ``TypeError``."""
        with pytest.raises(TypeError, match=r"EventHandle\.parent_id: expected str or None"):
            EventHandle("e1", bad_parent)

    def test_seq_counts_up_from_one(self):
        """``next_seq`` numbers the handle's later changes 1, 2, 3, ..."""
        handle = EventHandle("e1")
        assert [1, 2, 3] == [handle.next_seq() for _ in range(3)]

    def test_seq_can_start_later(self):
        """A handle resumed from a store can continue numbering where it left off."""
        handle = EventHandle("e1", next_seq=5)
        assert [5, 6] == [handle.next_seq(), handle.next_seq()]

    def test_attributes_are_read_only(self):
        """A handle's id cannot be reassigned."""
        with pytest.raises(AttributeError):
            EventHandle("e1").id = "e2"  # type: ignore[misc]


class TestEquality:
    def test_equal_by_id_and_parent(self):
        """Handles with the same id and parent are equal and hash alike."""
        assert EventHandle("e1", "p") == EventHandle("e1", "p")
        assert hash(EventHandle("e1", "p")) == hash(EventHandle("e1", "p"))

    def test_bus_and_seq_do_not_matter(self):
        """The bus a handle remembers and its seq counter do not affect equality."""
        assert EventHandle("e1", bus=EventBus()) == EventHandle("e1", next_seq=9)

    def test_different_id_or_parent_is_unequal(self):
        """Handles differing in id or parent are not equal."""
        assert EventHandle("e1", "p") != EventHandle("e2", "p")
        assert EventHandle("e1", "p") != EventHandle("e1", "q")
        assert EventHandle("e1", "p") != EventHandle("e1")

    def test_a_real_handle_called_noop_is_not_the_noop_handle(self):
        """A real handle whose id happens to be ``"noop"`` is not equal to the no-op handle."""
        assert EventHandle("noop") != EventHandle.noop()

    def test_not_equal_to_other_types(self):
        """A handle does not equal its id string or a tuple of its fields."""
        assert EventHandle("e1") != "e1"
        assert EventHandle("e1", None) != ("e1", None)

    def test_usable_in_sets(self):
        """Equal handles collapse in a set."""
        assert 2 == len({EventHandle("e1"), EventHandle("e1"), EventHandle("e2")})


class TestBadArguments:
    @pytest.mark.parametrize(
        "handle", [EventHandle.noop(), EventHandle("e1")], ids=["noop", "real"]
    )
    @pytest.mark.parametrize("value", NOT_EVENTS)
    def test_update_takes_an_event(self, handle, value):
        """``update`` with something that is not an event is a ``TypeError``, no-op or not."""
        with pytest.raises(TypeError, match=r"update\(\) takes an event"):
            handle.update(value)

    @pytest.mark.parametrize(
        "handle", [EventHandle.noop(), EventHandle("e1")], ids=["noop", "real"]
    )
    @pytest.mark.parametrize("value", NOT_EVENTS)
    def test_aupdate_takes_an_event(self, handle, value):
        """``aupdate`` with something that is not an event is a ``TypeError``, no-op or not."""
        with pytest.raises(TypeError, match=r"update\(\) takes an event"):
            asyncio.run(handle.aupdate(value))

    @pytest.mark.parametrize(
        "handle", [EventHandle.noop(), EventHandle("e1")], ids=["noop", "real"]
    )
    @pytest.mark.parametrize("value", NOT_ERRORS)
    def test_fail_takes_an_error_or_exception(self, handle, value):
        """``fail`` with neither an ``AlienError`` nor an exception is a ``TypeError``."""
        with pytest.raises(TypeError, match=r"fail\(\) takes an AlienError or an exception"):
            handle.fail(value)

    @pytest.mark.parametrize(
        "handle", [EventHandle.noop(), EventHandle("e1")], ids=["noop", "real"]
    )
    @pytest.mark.parametrize("value", NOT_ERRORS)
    def test_afail_takes_an_error_or_exception(self, handle, value):
        """``afail`` with neither an ``AlienError`` nor an exception is a ``TypeError``."""
        with pytest.raises(TypeError, match=r"fail\(\) takes an AlienError or an exception"):
            asyncio.run(handle.afail(value))

    @pytest.mark.parametrize(
        "handle", [EventHandle.noop(), EventHandle("e1")], ids=["noop", "real"]
    )
    def test_set_state_takes_an_error_or_exception(self, handle):
        """``set_state`` with an error that is neither an ``AlienError`` nor an exception fails."""
        with pytest.raises(TypeError, match=r"fail\(\) takes an AlienError or an exception"):
            handle.set_state(EventState.FAILED, "boom")  # type: ignore[arg-type]

    def test_set_state_refuses_an_unknown_state(self, bus):
        """``set_state`` with a value that is not a state is a ``ValueError``."""
        handle = EventHandle("e1", bus=bus)
        with pytest.raises(ValueError, match="'bogus' is not a valid EventState"):
            handle.set_state("bogus")  # type: ignore[arg-type]

    def test_noop_set_state_refuses_an_unknown_state(self):
        """The no-op handle refuses an unknown state too, as a real handle does."""
        with pytest.raises(ValueError, match="'bogus' is not a valid EventState"):
            EventHandle.noop().set_state("bogus")  # type: ignore[arg-type]


class TestOperations:
    def test_update_complete_and_fail_deliver_numbered_changes(self, bus, recorder):
        """Update, complete and fail deliver Updated and StateChanged changes numbered 1, 2, 3."""
        error = AlienError("E", "m")
        with bus:
            handle = AlienEvent.CompilingCode(language="rust").emit(EventState.STARTED)
            handle.update(AlienEvent.CompilingCode(language="rust", progress="50%"))
            handle.complete()
            handle.fail(error)
        _, changed, completed, failed = recorder.changes
        assert (
            Updated.unchecked(
                handle.id,
                changed.timestamp_micros,
                AlienEvent.CompilingCode(language="rust", progress="50%"),
                1,
            )
            == changed
        )
        assert (handle.id, EventState.SUCCESS, None, 2) == (
            completed.id,
            completed.new_state,
            completed.error,
            completed.seq,
        )
        assert (handle.id, EventState.FAILED, error, 3) == (
            failed.id,
            failed.new_state,
            failed.error,
            failed.seq,
        )

    def test_fail_with_an_exception_converts_it(self, bus, recorder):
        """``fail`` with an exception delivers the ``AlienError`` made from it."""
        exc = KeyError("missing")
        with bus:
            AlienEvent.Finished().emit().fail(exc)
        assert AlienError.from_exception(exc) == recorder.changes[-1].error

    def test_set_state_moves_to_any_state(self, bus, recorder):
        """``set_state`` delivers any state, in any order, as Rust's ``update_state`` does."""
        with bus:
            handle = AlienEvent.Finished().emit()
            handle.set_state(EventState.SUCCESS)
            handle.set_state(EventState.STARTED)
            handle.set_state(EventState.FAILED, ValueError("x"))
        assert [EventState.SUCCESS, EventState.STARTED, EventState.FAILED] == [
            c.new_state for c in recorder.changes[1:]
        ]
        assert "VALUE_ERROR" == recorder.changes[-1].error.code

    def test_async_twins_deliver_the_same_changes(self, bus, recorder):
        """``aupdate``, ``acomplete`` and ``afail`` deliver as their sync forms do."""

        async def main():
            async with bus:
                handle = await AlienEvent.Finished().aemit(EventState.STARTED)
                await handle.aupdate(AlienEvent.LoadingConfiguration())
                await handle.acomplete()
                await handle.afail(RuntimeError("late"))

        asyncio.run(main())
        assert [Created, Updated, StateChanged, StateChanged] == [type(c) for c in recorder.changes]
        assert [0, 1, 2, 3] == [c.seq for c in recorder.changes]
        assert "RUNTIME_ERROR" == recorder.changes[-1].error.code

    def test_handle_remembers_its_bus(self, bus, recorder):
        """A handle made inside ``with bus:`` still reaches that bus after the block ends."""
        with bus:
            handle = AlienEvent.Finished().emit(EventState.STARTED)
        handle.complete()
        assert EventState.SUCCESS == recorder.changes[-1].new_state

    def test_handle_from_an_id_uses_the_bus_in_context(self, bus, recorder):
        """A handle built from an id alone delivers to the bus of the current context."""
        with bus:
            EventHandle("stored-id").complete()
        [change] = recorder.changes
        assert ("stored-id", EventState.SUCCESS, 1) == (change.id, change.new_state, change.seq)

    def test_handle_from_an_id_without_a_bus_does_nothing(self):
        """A handle built from an id, used with no bus reachable, does nothing and raises nothing."""
        handle = EventHandle("stored-id")
        handle.update(AlienEvent.Finished())
        handle.complete()
        handle.fail(ValueError("x"))
        assert 1 == handle.next_seq()

    def test_handle_from_an_id_without_a_bus_async_and_set_state_do_nothing(self, bus, recorder):
        """With no bus reachable, the async twins and ``set_state`` do nothing and use up no ``seq``."""
        handle = EventHandle("stored-id")

        async def main():
            await handle.aupdate(AlienEvent.Finished())
            await handle.acomplete()
            await handle.afail(ValueError("x"))

        asyncio.run(main())
        handle.set_state(EventState.STARTED)
        handle.set_state(EventState.FAILED, ValueError("x"))
        assert [] == recorder.changes
        with bus:
            handle.complete()
        assert [("stored-id", 1)] == [(c.id, c.seq) for c in recorder.changes]

    @pytest.mark.parametrize(
        "operation",
        [
            lambda h: h.update(AlienEvent.Finished()),
            lambda h: h.complete(),
            lambda h: h.fail(ValueError("x")),
            lambda h: h.set_state(EventState.STARTED),
            lambda h: asyncio.run(h.aupdate(AlienEvent.Finished())),
            lambda h: asyncio.run(h.acomplete()),
            lambda h: asyncio.run(h.afail(ValueError("x"))),
        ],
        ids=["update", "complete", "fail", "set_state", "aupdate", "acomplete", "afail"],
    )
    def test_handle_from_an_id_without_a_bus_raises_in_strict_mode(self, operation):
        """In strict mode, every operation of a handle from an id with no bus reachable raises ``NoEventBusContext``."""
        set_strict(True)
        with pytest.raises(NoEventBusContext):
            operation(EventHandle("stored-id"))

    def test_handle_from_an_id_uses_the_process_default(self):
        """Outside any context, a handle built from an id delivers to the process default bus."""
        recorder = RecordingHandler()
        set_default_bus(EventBus([recorder]))
        EventHandle("stored-id").complete()
        assert ["stored-id"] == [c.id for c in recorder.changes]


class TestAsParent:
    def test_children_get_the_handle_as_parent(self, bus, recorder):
        """Events emitted inside ``with handle.as_parent():`` are children of the handle's event."""
        with bus:
            parent = AlienEvent.Finished().emit()
            with parent.as_parent() as given:
                child = AlienEvent.BuildingStack(stack="c").emit()
            after = AlienEvent.BuildingStack(stack="a").emit()
        assert parent is given
        assert (parent.id, None) == (child.parent_id, after.parent_id)

    def test_function_form_returns_its_result(self, bus, recorder):
        """``handle.as_parent(fn)`` calls ``fn`` with the handle and returns what it returns."""
        with bus:
            parent = AlienEvent.Finished().emit()
            result = parent.as_parent(
                lambda h: (h, AlienEvent.BuildingStack(stack="c").emit().parent_id)
            )
        assert (parent, parent.id) == result

    def test_current_event_inside_is_the_handle(self):
        """Inside ``as_parent``, ``current_event()`` is the handle; outside, the no-op handle."""
        handle = EventHandle("e1")
        with handle.as_parent():
            inside = current_event()
        assert handle is inside
        assert EventHandle.noop() is current_event()

    def test_makes_no_state_change(self, bus, recorder):
        """``as_parent`` delivers nothing of its own: no started, success or failed change."""
        with bus:
            parent = AlienEvent.Finished().emit()
            with pytest.raises(ValueError, match="body"), parent.as_parent():
                raise ValueError("body")
        assert [Created] == [type(c) for c in recorder.changes]

    def test_async_form(self, bus, recorder):
        """``async with handle.as_parent():`` parents the events emitted inside."""

        async def main():
            async with bus:
                parent = await AlienEvent.Finished().aemit()
                async with parent.as_parent():
                    child = await AlienEvent.BuildingStack(stack="c").aemit()
                return parent, child

        parent, child = asyncio.run(main())
        assert parent.id == child.parent_id
