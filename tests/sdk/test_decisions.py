"""
Pins decisions.md section 3: every place where alien-events deliberately differs from Rust.

One class per row of the table ("Where Python deliberately differs from Rust") and per
"small rule" after it. Async code runs through ``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventHandle,
    EventHandlerError,
    EventHandlerWarning,
    EventState,
    NoEventBusContext,
    StateChanged,
    Updated,
    alien_event,
    carry_context,
    current_event,
    event_type,
    is_strict,
    set_strict,
)
from alien_events_sdk import EventBus, RecordingHandler, set_default_bus


@event_type(tag="DecisionsTestStep")
class Step(Event):
    """A test-only event named by its role in the test."""

    name: str


# -- helpers -------------------------------------------------------------------------------


def describe(change):
    """The parts of a change a test can predict (no ids, no timestamps)."""
    if isinstance(change, Created):
        return ("created", change.event, change.state, change.seq)
    if isinstance(change, Updated):
        return ("updated", change.event, change.seq)
    return ("state", change.new_state, change.seq)


def lineage(changes):
    """Map each created event to its parent's event (None for a root)."""
    events = {c.id: c.event for c in changes if isinstance(c, Created)}
    return {
        c.event: (None if c.parent_id is None else events[c.parent_id])
        for c in changes
        if isinstance(c, Created)
    }


def created_of(changes, event):
    """The one Created change for ``event``."""
    (found,) = [c for c in changes if isinstance(c, Created) and c.event == event]
    return found


def final_state(changes, event_id):
    """The last StateChanged delivered for an event."""
    return [c for c in changes if isinstance(c, StateChanged) and c.id == event_id][-1]


class HandlerBroke(Exception):
    """What the failing test handlers raise."""


class Failing:
    """A handler that raises a fresh HandlerBroke on every change it is asked to fail."""

    def __init__(self, message="kaput", *, only=None):
        self.message = message
        self.only = only
        self.raised = []
        self.seen = []

    def on_event_change(self, change):
        self.seen.append(change)
        if self.only is None or self.only(change):
            error = HandlerBroke(self.message)
            self.raised.append(error)
            raise error


class FailsForScopeEvent:
    """A handler that raises on every change of AlienEvent.BuildingStack events only."""

    def __init__(self):
        self.ids = set()
        self.raised = []

    def on_event_change(self, change):
        if isinstance(change, Created) and isinstance(change.event, AlienEvent.BuildingStack):
            self.ids.add(change.id)
        if change.id in self.ids:
            error = HandlerBroke("scope handler broke")
            self.raised.append(error)
            raise error


class SlowAsyncRecorder:
    """An async handler that sleeps before recording, and notes where it ran."""

    def __init__(self):
        self.changes = []
        self.threads = []
        self.loops = []

    async def on_event_change(self, change):
        await asyncio.sleep(0.01)
        self.threads.append(threading.get_ident())
        self.loops.append(asyncio.get_running_loop())
        self.changes.append(change)


# -- row: sync code ------------------------------------------------------------------------


@alien_event(Step(name="sync-fn"))
def decorated_sync(x):
    Step(name="sync-fn-child").emit()
    return x * 2


@alien_event(Step(name="async-fn"))
async def decorated_async(x):
    await asyncio.sleep(0)
    await Step(name="async-fn-child").aemit()
    return x * 3


@alien_event(Step(name="gen-fn"))
def decorated_gen(n):
    for i in range(n):
        Step(name=f"gen-fn-child-{i}").emit()
        yield i


@alien_event(Step(name="agen-fn"))
async def decorated_agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        await Step(name=f"agen-fn-child-{i}").aemit()
        yield i


class TestSyncAndAsyncForms:
    def test_sync_lifecycle_delivers_created_updated_and_state_changed(self, bus, recorder):
        """Sync emit, update and complete each deliver their change before returning."""
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            assert 1 == len(recorder)
            handle.update(Step(name="b"))
            assert 2 == len(recorder)
            handle.complete()
        assert [
            ("created", Step(name="a"), EventState.STARTED, 0),
            ("updated", Step(name="b"), 1),
            ("state", EventState.SUCCESS, 2),
        ] == [describe(c) for c in recorder.changes]
        assert {handle.id} == {c.id for c in recorder.changes}

    def test_async_lifecycle_delivers_created_updated_and_state_changed(self, bus, recorder):
        """Async aemit, aupdate and acomplete deliver the same changes as the sync forms."""

        async def main():
            async with bus:
                handle = await Step(name="a").aemit(EventState.STARTED)
                await handle.aupdate(Step(name="b"))
                await handle.acomplete()
                return handle

        handle = asyncio.run(main())
        assert [
            ("created", Step(name="a"), EventState.STARTED, 0),
            ("updated", Step(name="b"), 1),
            ("state", EventState.SUCCESS, 2),
        ] == [describe(c) for c in recorder.changes]
        assert {handle.id} == {c.id for c in recorder.changes}

    def test_sync_fail_delivers_failed_state_with_its_error(self, bus, recorder):
        """Sync fail delivers a FAILED StateChanged carrying the AlienError given."""
        error = AlienError(code="DISK_FULL", message="no space left")
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            handle.fail(error)
        change = recorder.changes[-1]
        assert (EventState.FAILED, error, 1) == (change.new_state, change.error, change.seq)

    def test_async_fail_delivers_failed_state_with_its_error(self, bus, recorder):
        """Async afail delivers a FAILED StateChanged carrying the AlienError given."""
        error = AlienError(code="DISK_FULL", message="no space left")

        async def main():
            async with bus:
                handle = await Step(name="a").aemit(EventState.STARTED)
                await handle.afail(error)

        asyncio.run(main())
        change = recorder.changes[-1]
        assert (EventState.FAILED, error, 1) == (change.new_state, change.error, change.seq)

    def test_fail_with_an_exception_converts_it(self, bus, recorder):
        """Fail given a plain exception records AlienError.from_exception of it."""
        exc = ValueError("bad input")
        with bus:
            Step(name="a").emit(EventState.STARTED).fail(exc)
        assert AlienError.from_exception(exc) == recorder.changes[-1].error
        assert "VALUE_ERROR" == recorder.changes[-1].error.code

    def test_fail_rejects_something_that_is_not_an_error(self, bus, recorder):
        """Fail given neither an AlienError nor an exception raises TypeError and delivers nothing."""
        with bus:
            handle = Step(name="a").emit()
            with pytest.raises(TypeError):
                handle.fail("not an error")
        assert 1 == len(recorder)

    def test_sync_in_scope_starts_parents_and_completes(self, bus, recorder):
        """A sync ``with in_scope()`` emits started, parents the body's events, then success."""
        with bus, Step(name="scope").in_scope() as handle:
            Step(name="child").emit()
        assert [
            ("created", Step(name="scope"), EventState.STARTED, 0),
            ("created", Step(name="child"), EventState.NONE, 0),
            ("state", EventState.SUCCESS, 1),
        ] == [describe(c) for c in recorder.changes]
        assert handle.id == recorder.changes[1].parent_id

    def test_async_in_scope_starts_parents_and_completes(self, bus, recorder):
        """An ``async with in_scope()`` emits started, parents the body's events, then success."""

        async def main():
            async with bus, Step(name="scope").in_scope() as handle:
                await Step(name="child").aemit()
            return handle

        handle = asyncio.run(main())
        assert [
            ("created", Step(name="scope"), EventState.STARTED, 0),
            ("created", Step(name="child"), EventState.NONE, 0),
            ("state", EventState.SUCCESS, 1),
        ] == [describe(c) for c in recorder.changes]
        assert handle.id == recorder.changes[1].parent_id

    def test_in_scope_with_a_sync_function_returns_its_result(self, bus, recorder):
        """``in_scope(fn)`` calls fn with the scope's handle and returns fn's result."""
        with bus:
            result = Step(name="scope").in_scope(lambda handle: ("ran", handle.id))
        assert ("ran", recorder.changes[0].id) == result
        assert EventState.SUCCESS == recorder.changes[-1].new_state

    def test_in_scope_with_an_async_function_returns_an_awaitable_of_its_result(
        self, bus, recorder
    ):
        """``in_scope(async_fn)`` returns an awaitable that runs the scope and gives fn's result."""

        async def body(handle):
            await Step(name="child").aemit()
            return handle.id

        async def main():
            async with bus:
                return await Step(name="scope").in_scope(body)

        result = asyncio.run(main())
        assert recorder.changes[0].id == result
        assert recorder.changes[0].id == recorder.changes[1].parent_id
        assert EventState.SUCCESS == recorder.changes[-1].new_state

    def test_decorator_wraps_a_sync_function(self, bus, recorder):
        """The decorator runs a sync function inside its event and returns its result."""
        with bus:
            assert 42 == decorated_sync(21)
        assert {Step(name="sync-fn"): None, Step(name="sync-fn-child"): Step(name="sync-fn")} == (
            lineage(recorder.changes)
        )
        assert EventState.SUCCESS == recorder.changes[-1].new_state

    def test_decorator_wraps_an_async_function(self, bus, recorder):
        """The decorator runs a coroutine function inside its event and returns its result."""

        async def main():
            async with bus:
                return await decorated_async(5)

        assert 15 == asyncio.run(main())
        assert {
            Step(name="async-fn"): None,
            Step(name="async-fn-child"): Step(name="async-fn"),
        } == lineage(recorder.changes)
        assert EventState.SUCCESS == recorder.changes[-1].new_state

    def test_decorator_wraps_a_generator_function(self, bus, recorder):
        """The decorator runs a generator inside its event and completes it when exhausted."""
        with bus:
            assert [0, 1] == list(decorated_gen(2))
        assert {
            Step(name="gen-fn"): None,
            Step(name="gen-fn-child-0"): Step(name="gen-fn"),
            Step(name="gen-fn-child-1"): Step(name="gen-fn"),
        } == lineage(recorder.changes)
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])

    def test_decorator_wraps_an_async_generator_function(self, bus, recorder):
        """The decorator runs an async generator inside its event and completes it when exhausted."""

        async def main():
            async with bus:
                return [i async for i in decorated_agen(2)]

        assert [0, 1] == asyncio.run(main())
        assert {
            Step(name="agen-fn"): None,
            Step(name="agen-fn-child-0"): Step(name="agen-fn"),
            Step(name="agen-fn-child-1"): Step(name="agen-fn"),
        } == lineage(recorder.changes)
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])

    def test_suspended_generator_does_not_parent_the_callers_events(self, bus, recorder):
        """Between steps of a decorated generator, the caller's emits keep the caller's parent."""
        with bus:
            steps = decorated_gen(2)
            next(steps)
            Step(name="caller").emit()
            list(steps)
        assert None is lineage(recorder.changes)[Step(name="caller")]

    def test_bus_run_with_an_async_function_makes_the_bus_current_for_it(self, bus, recorder):
        """``bus.run(async_fn)`` returns an awaitable that runs fn with the bus current."""

        async def work(name):
            handle = await Step(name=name).aemit()
            return handle.id

        event_id = asyncio.run(bus.run(work, "ran"))
        assert [event_id] == [c.id for c in recorder.changes]


# -- row: async handlers -------------------------------------------------------------------


class TestAsyncHandlers:
    def test_every_sync_operation_waits_for_an_async_handler(self):
        """Sync emit, update, complete, fail and in_scope return only after the async handler ran."""
        slow = SlowAsyncRecorder()
        with EventBus([slow]):
            handle = Step(name="a").emit(EventState.STARTED)
            assert 1 == len(slow.changes)
            handle.update(Step(name="b"))
            assert 2 == len(slow.changes)
            handle.complete()
            assert 3 == len(slow.changes)
            handle.fail(ValueError("late"))
            assert 4 == len(slow.changes)
            with Step(name="scope").in_scope():
                assert 5 == len(slow.changes)
            assert 6 == len(slow.changes)
        assert [
            ("created", Step(name="a"), EventState.STARTED, 0),
            ("updated", Step(name="b"), 1),
            ("state", EventState.SUCCESS, 2),
            ("state", EventState.FAILED, 3),
            ("created", Step(name="scope"), EventState.STARTED, 0),
            ("state", EventState.SUCCESS, 1),
        ] == [describe(c) for c in slow.changes]

    def test_sync_form_inside_a_running_loop_still_waits_for_an_async_handler(self):
        """A sync emit made from inside a coroutine still runs the async handler to completion."""
        slow = SlowAsyncRecorder()

        async def main():
            with EventBus([slow]):
                Step(name="a").emit()
                return len(slow.changes)

        assert 1 == asyncio.run(main())

    def test_sync_form_runs_async_handler_on_another_thread(self):
        """A sync form runs an async handler on the SDK's own loop thread, not the caller's."""
        slow = SlowAsyncRecorder()
        with EventBus([slow]):
            Step(name="a").emit()
        assert threading.get_ident() != slow.threads[0]

    def test_async_forms_await_async_handler_on_the_callers_loop(self):
        """The async forms await an async handler on the running loop of the caller."""
        slow = SlowAsyncRecorder()

        async def main():
            async with EventBus([slow]):
                handle = await Step(name="a").aemit()
                await handle.aupdate(Step(name="b"))
                await handle.acomplete()
                await handle.afail(ValueError("late"))
                async with Step(name="scope").in_scope():
                    pass
            return asyncio.get_running_loop()

        loop = asyncio.run(main())
        assert [loop] * 6 == slow.loops
        assert [threading.get_ident()] * 6 == slow.threads

    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_sync_and_async_handlers_are_called_in_registration_order(self, form):
        """Mixed sync and async handlers each get a change in registration order, in both forms."""
        log = []

        def first(change):
            log.append(("first", change.seq))

        async def second(change):
            await asyncio.sleep(0)
            log.append(("second", change.seq))

        def third(change):
            log.append(("third", change.seq))

        bus = EventBus([first, second, third])
        if form == "sync":
            with bus:
                Step(name="a").emit().complete()
        else:

            async def main():
                async with bus:
                    await (await Step(name="a").aemit()).acomplete()

            asyncio.run(main())
        assert [
            ("first", 0),
            ("second", 0),
            ("third", 0),
            ("first", 1),
            ("second", 1),
            ("third", 1),
        ] == log

    def test_failing_async_handler_from_sync_form_raises_handler_error(self):
        """An async handler that raises under a sync emit makes it raise EventHandlerError."""
        raised = []

        async def broken(change):
            await asyncio.sleep(0)
            error = HandlerBroke("async sink down")
            raised.append(error)
            raise error

        with EventBus([broken]), pytest.raises(EventHandlerError) as info:
            Step(name="a").emit()
        assert raised[0] is info.value.__cause__
        assert "async sink down" in str(info.value)

    def test_failing_async_handler_from_async_form_raises_handler_error(self):
        """An async handler that raises under aemit makes it raise EventHandlerError."""
        raised = []

        async def broken(change):
            await asyncio.sleep(0)
            error = HandlerBroke("async sink down")
            raised.append(error)
            raise error

        async def main():
            async with EventBus([broken]):
                await Step(name="a").aemit()

        with pytest.raises(EventHandlerError) as info:
            asyncio.run(main())
        assert raised[0] is info.value.__cause__
        assert "async sink down" in str(info.value)

    def test_async_handler_run_from_sync_form_sees_the_callers_context(self):
        """An async handler run from a sync form sees the caller's bus and current scope."""
        seen = []

        async def looks(change):
            seen.append((EventBus.current(), current_event().id))

        bus = EventBus([looks])
        with bus, Step(name="scope").in_scope() as scope:
            Step(name="child").emit()
        assert (bus, scope.id) == seen[1]


# -- row: a failing handler ----------------------------------------------------------------


class TestFailingHandlers:
    def test_every_handler_gets_the_change_before_the_error(self):
        """A failing first handler does not stop later handlers from getting the change."""
        broken, recorder = Failing(), RecordingHandler()
        with EventBus([broken, recorder]), pytest.raises(EventHandlerError):
            Step(name="a").emit()
        assert [("created", Step(name="a"), EventState.NONE, 0)] == [
            describe(c) for c in recorder.changes
        ]

    def test_error_message_says_handler_failed_and_gives_the_handlers_message(self):
        """The EventHandlerError's text holds "Event handler failed" and the handler's message."""
        with EventBus([Failing("sink is on fire")]), pytest.raises(EventHandlerError) as info:
            Step(name="a").emit()
        assert "Event handler failed" in str(info.value)
        assert "sink is on fire" in str(info.value)

    def test_error_is_chained_to_the_handlers_exception(self):
        """The EventHandlerError's ``__cause__`` is the very exception the handler raised."""
        broken = Failing()
        with EventBus([broken]), pytest.raises(EventHandlerError) as info:
            Step(name="a").emit()
        assert broken.raised[0] is info.value.__cause__
        assert (broken.raised[0],) == info.value.errors

    def test_errors_lists_every_failure_in_handler_order(self):
        """When several handlers fail, ``errors`` holds each exception, in handler order."""
        first, recorder, second = Failing("one"), RecordingHandler(), Failing("two")
        with EventBus([first, recorder, second]), pytest.raises(EventHandlerError) as info:
            Step(name="a").emit()
        assert (first.raised[0], second.raised[0]) == info.value.errors
        assert first.raised[0] is info.value.__cause__
        assert "one" in str(info.value)
        assert "two" in str(info.value)
        assert 1 == len(recorder)
        assert 1 == len(second.seen)

    def test_failed_emit_carries_the_real_handle(self):
        """A failed emit's EventHandlerError carries the event's handle, which still works."""
        broken = Failing(only=lambda change: isinstance(change, Created))
        recorder = RecordingHandler()
        with EventBus([broken, recorder]):
            with pytest.raises(EventHandlerError) as info:
                Step(name="a").emit(EventState.STARTED)
            handle = info.value.handle
            assert not handle.is_noop
            assert recorder.changes[0].id == handle.id
            handle.complete()
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])
        assert handle.id == recorder.changes[-1].id

    def test_failed_aemit_carries_the_real_handle(self):
        """A failed aemit's EventHandlerError carries the event's handle."""
        recorder = RecordingHandler()

        async def main():
            async with EventBus([Failing(), recorder]):
                await Step(name="a").aemit()

        with pytest.raises(EventHandlerError) as info:
            asyncio.run(main())
        assert recorder.changes[0].id == info.value.handle.id

    def test_sync_update_complete_and_fail_raise_after_every_handler(self):
        """Sync update, complete and fail raise EventHandlerError after every handler got the change."""
        broken = Failing(only=lambda change: not isinstance(change, Created))
        recorder = RecordingHandler()
        with EventBus([broken, recorder]):
            handle = Step(name="a").emit()
            with pytest.raises(EventHandlerError):
                handle.update(Step(name="b"))
            with pytest.raises(EventHandlerError):
                handle.complete()
            with pytest.raises(EventHandlerError):
                handle.fail(ValueError("late"))
        assert [0, 1, 2, 3] == [c.seq for c in recorder.changes]
        assert 3 == len(broken.raised)

    def test_async_update_complete_and_fail_raise_after_every_handler(self):
        """Async aupdate, acomplete and afail raise EventHandlerError after every handler got it."""
        broken = Failing(only=lambda change: not isinstance(change, Created))
        recorder = RecordingHandler()
        outcomes = []

        async def main():
            async with EventBus([broken, recorder]):
                handle = await Step(name="a").aemit()
                for call in (
                    lambda: handle.aupdate(Step(name="b")),
                    handle.acomplete,
                    lambda: handle.afail(ValueError("late")),
                ):
                    try:
                        await call()
                    except EventHandlerError as exc:
                        outcomes.append(exc.__cause__)

        asyncio.run(main())
        assert broken.raised == outcomes
        assert [0, 1, 2, 3] == [c.seq for c in recorder.changes]

    def test_handler_that_is_not_callable_is_rejected(self):
        """A handler that is neither callable nor has on_event_change is refused at bus creation."""
        with pytest.raises(TypeError):
            EventBus([42])


# -- row: a failing handler, in scopes -------------------------------------------------------


class TestScopesSurviveFailingHandlers:
    def test_in_scope_warns_once_and_keeps_the_real_handle(self):
        """A handler failing on every change of the scope's event gives one warning, real handle."""
        broken, recorder = FailsForScopeEvent(), RecordingHandler()
        with (
            pytest.warns(EventHandlerWarning) as warned,
            EventBus([broken, recorder]),
            AlienEvent.BuildingStack(stack="s").in_scope() as handle,
        ):
            Step(name="child").emit()
        assert 1 == len(warned)
        assert 2 == len(broken.raised)
        assert not handle.is_noop
        assert [handle.id, handle.id, handle.id] == [
            recorder.changes[0].id,
            recorder.changes[1].parent_id,
            recorder.changes[2].id,
        ]
        assert [
            ("created", AlienEvent.BuildingStack(stack="s"), EventState.STARTED, 0),
            ("created", Step(name="child"), EventState.NONE, 0),
            ("state", EventState.SUCCESS, 1),
        ] == [describe(c) for c in recorder.changes]

    def test_warning_text_carries_the_handler_failure(self):
        """The scope's EventHandlerWarning says "Event handler failed" and the handler's message."""
        with (
            pytest.warns(EventHandlerWarning) as warned,
            EventBus([FailsForScopeEvent()]),
            AlienEvent.BuildingStack(stack="s").in_scope(),
        ):
            pass
        assert "Event handler failed" in str(warned[0].message)
        assert "scope handler broke" in str(warned[0].message)

    def test_async_in_scope_warns_once_and_keeps_the_real_handle(self):
        """An ``async with in_scope()`` with a failing handler warns once and keeps the handle."""
        recorder = RecordingHandler()

        async def main():
            async with (
                EventBus([FailsForScopeEvent(), recorder]),
                AlienEvent.BuildingStack(stack="s").in_scope() as handle,
            ):
                await Step(name="child").aemit()
            return handle

        with pytest.warns(EventHandlerWarning) as warned:
            handle = asyncio.run(main())
        assert 1 == len(warned)
        assert not handle.is_noop
        assert handle.id == recorder.changes[1].parent_id
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])

    def test_in_scope_function_result_survives_a_failing_handler(self):
        """``in_scope(fn)`` returns fn's result although a handler fails on the scope's changes."""
        with pytest.warns(EventHandlerWarning), EventBus([FailsForScopeEvent()]):
            result = AlienEvent.BuildingStack(stack="s").in_scope(lambda handle: "value")
        assert "value" == result

    def test_handler_failing_only_on_state_changed_still_lets_the_scope_return(self):
        """A handler failing only on the terminal change still lets the scope end normally."""
        broken = Failing(only=lambda change: isinstance(change, StateChanged))
        recorder = RecordingHandler()
        with pytest.warns(EventHandlerWarning) as warned, EventBus([broken, recorder]):
            result = Step(name="s").in_scope(lambda handle: "value")
        assert "value" == result
        assert 1 == len(warned)
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])

    def test_body_exception_propagates_rather_than_the_handler_error(self):
        """With a failing handler, the body's own exception still propagates unchanged."""
        recorder = RecordingHandler()
        original = ValueError("body failed")
        with (
            pytest.warns(EventHandlerWarning) as warned,
            EventBus([FailsForScopeEvent(), recorder]),
            pytest.raises(ValueError) as info,
            AlienEvent.BuildingStack(stack="s").in_scope(),
        ):
            raise original
        assert original is info.value
        assert 1 == len(warned)
        assert EventState.FAILED == recorder.changes[-1].new_state

    @pytest.mark.parametrize("kind", ["sync", "async", "generator", "async-generator"])
    def test_decorator_never_fails_because_of_handlers(self, kind):
        """Every decorated kind of function runs to its result with one warning and full scope."""
        recorder = RecordingHandler()
        bus = EventBus([FailsForScopeEvent(), recorder])
        event = AlienEvent.BuildingStack(stack=kind)

        @alien_event(event)
        def sync_fn():
            Step(name="child").emit()
            return "done"

        @alien_event(event)
        async def async_fn():
            await Step(name="child").aemit()
            return "done"

        @alien_event(event)
        def gen_fn():
            Step(name="child").emit()
            yield "done"

        @alien_event(event)
        async def agen_fn():
            await Step(name="child").aemit()
            yield "done"

        async def run_async():
            async with bus:
                if kind == "async":
                    return await async_fn()
                (only,) = [i async for i in agen_fn()]
                return only

        def run():
            if kind == "sync":
                return bus.run(sync_fn)
            if kind == "generator":
                (only,) = bus.run(lambda: list(gen_fn()))
                return only
            return asyncio.run(run_async())

        with pytest.warns(EventHandlerWarning) as warned:
            result = run()
        assert "done" == result
        assert 1 == len(warned)
        assert {event: None, Step(name="child"): event} == lineage(recorder.changes)
        assert ("state", EventState.SUCCESS, 1) == describe(recorder.changes[-1])


# -- row: exceptions in a scope ------------------------------------------------------------


class CodedError(Exception):
    """An exception that names its own error code."""

    code = "QUOTA_EXCEEDED"


class NumericCodeError(Exception):
    """An exception whose ``code`` attribute is not a string."""

    code = 404


class HTTPNotFoundError(Exception):
    """An exception whose class name starts with an acronym."""


def failure_of_scope(bus, recorder, body_exception):
    """Raise ``body_exception`` in a scope; check it propagates unchanged; return the error."""
    with bus, pytest.raises(BaseException) as info, Step(name="scope").in_scope():
        raise body_exception
    assert body_exception is info.value
    change = recorder.changes[-1]
    assert (EventState.FAILED, 1) == (change.new_state, change.seq)
    return change.error


class TestExceptionsInScope:
    def test_exception_fails_the_event_and_is_reraised_unchanged(self, bus, recorder):
        """An exception in the body fails the event and is re-raised as the same object."""
        exc = RuntimeError("boom")
        error = failure_of_scope(bus, recorder, exc)
        assert AlienError.from_exception(exc) == error
        assert ("RUNTIME_ERROR", "boom") == (error.code, error.message)

    def test_code_is_the_exceptions_string_code_attribute(self, bus, recorder):
        """An exception with a string ``code`` attribute gives that code."""
        error = failure_of_scope(bus, recorder, CodedError("over quota"))
        assert ("QUOTA_EXCEEDED", "over quota") == (error.code, error.message)

    def test_non_string_code_attribute_falls_back_to_the_class_name(self, bus, recorder):
        """A non-string ``code`` attribute is ignored in favour of the UPPER_SNAKE class name."""
        error = failure_of_scope(bus, recorder, NumericCodeError("gone"))
        assert "NUMERIC_CODE_ERROR" == error.code

    @pytest.mark.parametrize(
        ("exc", "code"),
        [
            (ValueError("v"), "VALUE_ERROR"),
            (KeyError("k"), "KEY_ERROR"),
            (OSError("o"), "OS_ERROR"),
            (HTTPNotFoundError("h"), "HTTP_NOT_FOUND_ERROR"),
        ],
    )
    def test_code_is_the_class_name_in_upper_snake(self, bus, recorder, exc, code):
        """Without a code attribute the code is the exception class name in UPPER_SNAKE."""
        assert code == failure_of_scope(bus, recorder, exc).code

    def test_message_is_the_class_name_when_the_exception_text_is_empty(self, bus, recorder):
        """An exception with empty text gives its class name as the message."""
        assert "ValueError" == failure_of_scope(bus, recorder, ValueError()).message

    def test_cause_becomes_the_source(self, bus, recorder):
        """The exception's ``__cause__`` becomes the error's source, recursively."""

        def chain():
            try:
                try:
                    raise KeyError("root")
                except KeyError as root:
                    raise OSError("middle") from root
            except OSError as middle:
                raise CodedError("top") from middle

        with bus, pytest.raises(CodedError), Step(name="scope").in_scope():
            chain()
        error = recorder.changes[-1].error
        assert [("QUOTA_EXCEEDED", "top"), ("OS_ERROR", "middle"), ("KEY_ERROR", "'root'")] == [
            (error.code, error.message),
            (error.source.code, error.source.message),
            (error.source.source.code, error.source.source.message),
        ]
        assert None is error.source.source.source

    def test_context_becomes_the_source_when_there_is_no_cause(self, bus, recorder):
        """An exception raised while handling another has that one (``__context__``) as source."""

        def raises_while_handling():
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("second")  # noqa: B904

        with bus, pytest.raises(ValueError), Step(name="scope").in_scope():
            raises_while_handling()
        error = recorder.changes[-1].error
        assert ("VALUE_ERROR", "KEY_ERROR") == (error.code, error.source.code)

    def test_cause_wins_over_context(self, bus, recorder):
        """When both are set, ``__cause__`` and not ``__context__`` becomes the source."""

        def raises_with_both():
            try:
                raise KeyError("context")
            except KeyError:
                raise ValueError("top") from OSError("cause")

        with bus, pytest.raises(ValueError), Step(name="scope").in_scope():
            raises_with_both()
        assert "OS_ERROR" == recorder.changes[-1].error.source.code

    def test_from_none_leaves_no_source(self, bus, recorder):
        """``raise ... from None`` suppresses the context, so the error has no source."""

        def raises_from_none():
            try:
                raise KeyError("hidden")
            except KeyError:
                raise ValueError("shown") from None

        with bus, pytest.raises(ValueError), Step(name="scope").in_scope():
            raises_from_none()
        assert None is recorder.changes[-1].error.source

    def test_async_scope_exception_fails_the_event_and_is_reraised(self, bus, recorder):
        """An exception in an ``async with in_scope()`` body fails the event and propagates as is."""
        exc = CodedError("async over quota")

        async def main():
            async with bus, Step(name="scope").in_scope():
                await asyncio.sleep(0)
                raise exc

        with pytest.raises(CodedError) as info:
            asyncio.run(main())
        assert exc is info.value
        assert AlienError.from_exception(exc) == recorder.changes[-1].error

    @pytest.mark.parametrize("kind", ["sync", "async", "generator", "async-generator"])
    def test_decorated_function_exception_fails_the_event_and_is_reraised(
        self, bus, recorder, kind
    ):
        """Every decorated kind of function fails its event on an exception and re-raises it."""
        exc = CodedError(kind)

        @alien_event(Step(name=kind))
        def sync_fn():
            raise exc

        @alien_event(Step(name=kind))
        async def async_fn():
            raise exc

        @alien_event(Step(name=kind))
        def gen_fn():
            yield 1
            raise exc

        @alien_event(Step(name=kind))
        async def agen_fn():
            yield 1
            raise exc

        async def run_async():
            async with bus:
                if kind == "async":
                    await async_fn()
                else:
                    [i async for i in agen_fn()]

        def run():
            if kind == "sync":
                bus.run(sync_fn)
            elif kind == "generator":
                bus.run(lambda: list(gen_fn()))
            else:
                asyncio.run(run_async())

        with pytest.raises(CodedError) as info:
            run()
        assert exc is info.value
        change = recorder.changes[-1]
        assert (EventState.FAILED, "QUOTA_EXCEEDED", kind) == (
            change.new_state,
            change.error.code,
            change.error.message,
        )


# -- row: exceptions in a scope (cancellation) and small rule: generator closed early --------


def assert_cancelled(recorder):
    """The last change is the FAILED StateChanged with code CANCELLED."""
    change = recorder.changes[-1]
    assert isinstance(change, StateChanged)
    assert (EventState.FAILED, "CANCELLED") == (change.new_state, change.error.code)


class TestCancellation:
    def test_cancelled_task_fails_its_scope_with_cancelled(self, bus, recorder):
        """Cancelling a task inside ``async with in_scope()`` fails the event with CANCELLED."""

        async def main():
            started = asyncio.Event()

            async def body():
                async with Step(name="slow").in_scope():
                    started.set()
                    await asyncio.sleep(3600)

            task = asyncio.create_task(body())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return task.cancelled()

        with bus:
            assert asyncio.run(main())
        assert_cancelled(recorder)

    def test_timeout_fails_the_scope_with_cancelled(self, bus, recorder):
        """An ``asyncio.timeout`` expiring inside a scope fails the event with CANCELLED."""

        async def main():
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0), Step(name="slow").in_scope():
                    await asyncio.sleep(3600)

        with bus:
            asyncio.run(main())
        assert_cancelled(recorder)

    def test_cancelled_decorated_coroutine_fails_with_cancelled(self, bus, recorder):
        """Cancelling a decorated coroutine function fails its event with CANCELLED."""

        @alien_event(Step(name="slow"))
        async def slow(started):
            started.set()
            await asyncio.sleep(3600)

        async def main():
            started = asyncio.Event()
            task = asyncio.create_task(slow(started))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        with bus:
            asyncio.run(main())
        assert_cancelled(recorder)

    def test_cancellation_while_the_scope_is_being_created_still_ends_it(self):
        """A task cancelled while an async handler takes the scope's Created still ends it CANCELLED."""
        recorder = RecordingHandler()
        blocked = asyncio.Event()

        async def slow_on_first_change(change):
            if not blocked.is_set():
                blocked.set()
                await asyncio.sleep(3600)

        async def body():
            async with Step(name="slow start").in_scope():
                await asyncio.sleep(3600)

        async def main():
            async with EventBus([recorder, slow_on_first_change]):
                task = asyncio.create_task(body())
                await blocked.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        assert_cancelled(recorder)

    def test_keyboard_interrupt_fails_the_scope_with_cancelled_and_propagates(self, bus, recorder):
        """A KeyboardInterrupt in a scope fails the event with CANCELLED and still propagates."""
        with bus, pytest.raises(KeyboardInterrupt), Step(name="scope").in_scope():
            raise KeyboardInterrupt
        assert_cancelled(recorder)

    def test_generator_closed_early_fails_with_cancelled(self, bus, recorder):
        """A decorated generator closed before it finishes ends its scope FAILED with CANCELLED."""
        with bus:
            steps = decorated_gen(3)
            assert 0 == next(steps)
            steps.close()
        assert_cancelled(recorder)
        assert 2 == len([c for c in recorder.changes if isinstance(c, Created)])

    def test_generator_abandoned_by_break_fails_with_cancelled(self, bus, recorder):
        """Breaking out of a loop over a decorated generator (then dropping it) ends it CANCELLED."""
        with bus:
            for _ in decorated_gen(3):
                break
        assert_cancelled(recorder)

    def test_async_generator_closed_early_fails_with_cancelled(self, bus, recorder):
        """A decorated async generator closed before it finishes ends its scope as CANCELLED."""

        async def main():
            async with bus:
                steps = decorated_agen(3)
                assert 0 == await anext(steps)
                await steps.aclose()

        asyncio.run(main())
        assert_cancelled(recorder)


# -- row: spawned work ---------------------------------------------------------------------


class TestSpawnedWork:
    def test_asyncio_task_inherits_bus_and_parent(self, bus, recorder):
        """A task created inside a scope emits to the same bus with the scope as parent."""

        async def child():
            await Step(name="child").aemit()

        async def main():
            async with bus, Step(name="parent").in_scope():
                await asyncio.create_task(child())

        asyncio.run(main())
        assert {Step(name="parent"): None, Step(name="child"): Step(name="parent")} == lineage(
            recorder.changes
        )

    def test_gathered_branches_keep_their_own_parents(self, bus, recorder):
        """Two interleaving tasks each parent their children to their own scope."""

        async def branch(name):
            async with Step(name=name).in_scope():
                for i in range(3):
                    await asyncio.sleep(0)
                    await Step(name=f"{name}-{i}").aemit()

        async def main():
            async with bus:
                await asyncio.gather(branch("a"), branch("b"))

        asyncio.run(main())
        family = lineage(recorder.changes)
        assert {f"{b}-{i}": b for b in "ab" for i in range(3)} == {
            child.name: parent.name for child, parent in family.items() if parent is not None
        }
        names = [c.event.name for c in recorder.changes if isinstance(c, Created)]
        assert names.index("b") < names.index("a-2")  # the branches did interleave

    def test_plain_thread_inherits_neither_bus_nor_parent(self, bus, recorder):
        """A plain thread started inside a bus and scope sees no bus: its emit is a no-op."""
        seen = []

        def work():
            seen.append((Step(name="in-thread").emit(), EventBus.current(), current_event()))

        with bus, Step(name="parent").in_scope():
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
        handle, current_bus, scope = seen[0]
        assert (True, None, True) == (handle.is_noop, current_bus, scope.is_noop)
        assert [Step(name="parent")] == [
            c.event for c in recorder.changes if isinstance(c, Created)
        ]

    def test_carry_context_carries_bus_and_parent_into_a_thread(self, bus, recorder):
        """``carry_context(fn)`` runs fn in a thread with the caller's bus and parent."""
        with bus, Step(name="parent").in_scope():
            thread = threading.Thread(target=carry_context(Step(name="in-thread").emit))
            thread.start()
            thread.join()
        assert {
            Step(name="parent"): None,
            Step(name="in-thread"): Step(name="parent"),
        } == lineage(recorder.changes)

    def test_carry_context_works_with_an_executor_and_returns_the_result(self, bus, recorder):
        """``pool.submit(carry_context(fn), x)`` runs fn in context and gives back its result."""

        def work(x):
            Step(name=f"work-{x}").emit()
            return x * 2

        with ThreadPoolExecutor(max_workers=2) as pool, bus, Step(name="parent").in_scope():
            carried = carry_context(work)
            results = [f.result() for f in [pool.submit(carried, x) for x in range(4)]]
        assert [0, 2, 4, 6] == results
        family = lineage(recorder.changes)
        assert [Step(name="parent")] * 4 == [family[Step(name=f"work-{x}")] for x in range(4)]

    def test_carried_callable_gives_each_call_its_own_context(self, bus, recorder):
        """Concurrent calls of one carried callable do not see each other's scopes."""
        barrier = threading.Barrier(2)

        def work(name):
            with Step(name=name).in_scope():
                barrier.wait()
                Step(name=f"{name}-child").emit()
                barrier.wait()

        with bus, Step(name="parent").in_scope():
            carried = carry_context(work)
            threads = [threading.Thread(target=carried, args=(n,)) for n in ("x", "y")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        family = lineage(recorder.changes)
        assert [Step(name="x"), Step(name="y")] == [
            family[Step(name="x-child")],
            family[Step(name="y-child")],
        ]
        assert [Step(name="parent"), Step(name="parent")] == [
            family[Step(name="x")],
            family[Step(name="y")],
        ]


# -- row: no bus, and small rule: strict mode ----------------------------------------------

STRICT_SCRIPT = """
from alien_events_api import AlienEvent, NoEventBusContext, is_strict
try:
    handle = AlienEvent.Finished().emit()
except NoEventBusContext:
    print("raised", is_strict())
else:
    print("noop" if handle.is_noop else "real", is_strict())
"""


class TestNoBus:
    def test_emit_without_a_bus_returns_the_noop_handle(self):
        """With no bus reachable, emit returns the no-op handle (id "noop") and delivers nothing."""
        handle = Step(name="a").emit(EventState.STARTED, parent="some-parent")
        assert ("noop", True, None) == (handle.id, handle.is_noop, handle.parent_id)
        assert EventHandle.noop() == handle
        assert EventBus.current() is None

    def test_aemit_without_a_bus_returns_the_noop_handle(self):
        """With no bus reachable, aemit returns the no-op handle."""
        handle = asyncio.run(Step(name="a").aemit())
        assert ("noop", True) == (handle.id, handle.is_noop)

    def test_noop_handle_operations_deliver_nothing_even_inside_a_bus(self, bus, recorder):
        """Update, complete and fail on the no-op handle do nothing, even with a bus current."""
        noop = Step(name="a").emit()
        with bus:
            noop.update(Step(name="b"))
            noop.complete()
            noop.fail(ValueError("x"))
            asyncio.run(noop.acomplete())
        assert 0 == len(recorder)

    def test_in_scope_without_a_bus_runs_the_body_with_the_noop_handle(self):
        """Without a bus, in_scope still runs its body, with the no-op handle."""
        with Step(name="scope").in_scope() as handle:
            inner = Step(name="child").emit()
        assert (True, True) == (handle.is_noop, inner.is_noop)

    def test_strict_mode_makes_emit_raise(self):
        """With ``set_strict(True)`` and no bus, emit raises NoEventBusContext."""
        set_strict(True)
        with pytest.raises(NoEventBusContext):
            Step(name="a").emit()

    def test_strict_mode_makes_aemit_raise(self):
        """With ``set_strict(True)`` and no bus, aemit raises NoEventBusContext."""
        set_strict(True)
        with pytest.raises(NoEventBusContext):
            asyncio.run(Step(name="a").aemit())

    def test_strict_mode_makes_in_scope_raise(self):
        """With ``set_strict(True)`` and no bus, entering in_scope raises NoEventBusContext."""
        set_strict(True)
        ran = []
        with pytest.raises(NoEventBusContext), Step(name="a").in_scope():
            ran.append(True)
        assert [] == ran

    def test_no_event_bus_context_is_also_a_runtime_error(self):
        """NoEventBusContext can be caught as RuntimeError."""
        set_strict(True)
        with pytest.raises(RuntimeError):
            Step(name="a").emit()

    def test_strict_mode_is_satisfied_by_a_context_bus_or_the_default(self, bus, recorder):
        """Strict mode raises only when neither a context bus nor a default bus is reachable."""
        set_strict(True)
        with bus:
            Step(name="context").emit()
        set_default_bus(bus)
        Step(name="default").emit()
        assert [Step(name="context"), Step(name="default")] == [c.event for c in recorder.changes]

    def test_set_strict_returns_the_previous_value(self):
        """``set_strict`` returns the old setting and ``is_strict`` reports the new one."""
        assert (False, True) == (set_strict(True), is_strict())
        assert (True, False) == (set_strict(False), is_strict())

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("1", "raised True"), ("0", "noop False"), (None, "noop False")],
    )
    def test_strict_environment_variable(self, value, expected):
        """ALIEN_EVENTS_STRICT=1 in the environment turns strict mode on at import."""
        env = {k: v for k, v in os.environ.items() if k != "ALIEN_EVENTS_STRICT"}
        if value is not None:
            env["ALIEN_EVENTS_STRICT"] = value
        done = subprocess.run(
            [sys.executable, "-c", STRICT_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert expected == done.stdout.strip()


# -- row: global bus -----------------------------------------------------------------------


class TestProcessDefaultBus:
    def test_set_default_bus_returns_the_previous_default(self):
        """``set_default_bus`` returns the default it replaces, and None clears it."""
        first, second = EventBus(), EventBus()
        assert None is set_default_bus(first)
        assert first is set_default_bus(second)
        assert second is set_default_bus(None)
        assert None is set_default_bus(None)

    def test_default_bus_receives_emits_outside_any_context(self, bus, recorder):
        """With a default installed, code outside any context emits to it."""
        set_default_bus(bus)
        handle = Step(name="a").emit()
        assert not handle.is_noop
        assert [handle.id] == [c.id for c in recorder.changes]

    def test_context_bus_takes_precedence_over_the_default(self):
        """A bus in context wins over the default; the default wins over the no-op."""
        default_recorder, context_recorder = RecordingHandler(), RecordingHandler()
        set_default_bus(EventBus([default_recorder]))
        with EventBus([context_recorder]):
            Step(name="context").emit()
        Step(name="default").emit()
        set_default_bus(None)
        assert Step(name="nowhere").emit().is_noop
        assert [Step(name="context")] == [c.event for c in context_recorder.changes]
        assert [Step(name="default")] == [c.event for c in default_recorder.changes]

    def test_plain_threads_reach_the_default_bus(self, bus, recorder):
        """A plain thread, which inherits no context, emits to the process default."""
        set_default_bus(bus)
        thread = threading.Thread(target=Step(name="in-thread").emit)
        thread.start()
        thread.join()
        assert [Step(name="in-thread")] == [c.event for c in recorder.changes]

    def test_set_default_bus_rejects_what_is_not_a_bus(self):
        """``set_default_bus`` refuses anything but an EventBus or None."""
        with pytest.raises(TypeError):
            set_default_bus("bus")
        assert None is EventBus.current()


# -- small rule: EventBus.current and register_handler ---------------------------------------


class TestCurrentBusAndRegisterHandler:
    def test_current_is_none_without_any_bus(self):
        """``EventBus.current()`` is None when no bus is reachable."""
        assert None is EventBus.current()

    def test_current_is_the_context_bus_then_the_default(self):
        """``EventBus.current()`` gives the context bus first, else the process default."""
        default, context = EventBus(), EventBus()
        set_default_bus(default)
        with context:
            assert context is EventBus.current()
        assert default is EventBus.current()

    def test_current_inside_an_asyncio_task_is_the_inherited_bus(self):
        """Inside a task started under ``async with bus``, current() is that bus."""
        bus = EventBus()

        async def current_async():
            return EventBus.current()

        async def main():
            async with bus:
                return await asyncio.create_task(current_async())

        assert bus is asyncio.run(main())

    def test_register_handler_adds_to_the_context_bus_for_later_runs(self):
        """``register_handler`` adds to the context bus and the handler stays for later runs."""
        bus, late = EventBus(), RecordingHandler()
        with bus:
            assert bus is EventBus.register_handler(late)
        bus.run(lambda: Step(name="later").emit())
        assert [Step(name="later")] == [c.event for c in late.changes]
        assert (late,) == bus.handlers

    def test_register_handler_adds_to_the_default_outside_any_context(self):
        """Outside any context, ``register_handler`` adds to the process default bus."""
        bus, late = EventBus(), RecordingHandler()
        set_default_bus(bus)
        assert bus is EventBus.register_handler(late)
        Step(name="a").emit()
        assert 1 == len(late)

    def test_register_handler_without_a_bus_does_nothing(self):
        """With no bus reachable, ``register_handler`` returns None."""
        assert None is EventBus.register_handler(RecordingHandler())

    def test_register_handler_from_inside_a_handler_does_not_deadlock(self):
        """A handler may register another; it gets the later changes, not the one in flight."""
        late = RecordingHandler()

        def registers(change):
            if isinstance(change, Created):
                EventBus.register_handler(late)

        bus = EventBus([registers])
        with bus:
            handle = Step(name="a").emit()
            handle.complete()
        assert [("state", EventState.SUCCESS, 1)] == [describe(c) for c in late.changes]


# -- row: validation of transitions (the bus stays permissive) -------------------------------


class TestPermissiveBus:
    def test_double_complete_delivers_two_state_changed(self, bus, recorder):
        """Completing an event twice delivers two SUCCESS changes."""
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            handle.complete()
            handle.complete()
        assert [
            ("state", EventState.SUCCESS, 1),
            ("state", EventState.SUCCESS, 2),
        ] == [describe(c) for c in recorder.changes[1:]]

    def test_update_after_complete_is_delivered(self, bus, recorder):
        """An update after the event completed is still delivered."""
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            handle.complete()
            handle.update(Step(name="late"))
        assert ("updated", Step(name="late"), 2) == describe(recorder.changes[-1])

    def test_any_transition_is_delivered(self, bus, recorder):
        """Every state transition is delivered, including leaving a terminal state."""
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            handle.complete()
            handle.set_state(EventState.STARTED)
            handle.fail(ValueError("x"))
            handle.set_state(EventState.NONE)
            handle.complete()
        assert [
            EventState.SUCCESS,
            EventState.STARTED,
            EventState.FAILED,
            EventState.NONE,
            EventState.SUCCESS,
        ] == [c.new_state for c in recorder.changes[1:]]

    def test_change_for_an_unknown_id_is_delivered(self, bus, recorder):
        """A state change for an id the bus never created is delivered as is."""
        EventHandle("nonexistent-id", bus=bus).set_state(EventState.STARTED)
        assert [("nonexistent-id", EventState.STARTED, 1)] == [
            (c.id, c.new_state, c.seq) for c in recorder.changes
        ]

    def test_publishing_the_same_change_twice_delivers_it_twice(self, bus, recorder):
        """A replayed change is delivered again, unchanged."""
        with bus:
            Step(name="a").emit()
        change = recorder.changes[0]
        bus.publish(change)
        asyncio.run(bus.apublish(change))
        assert [change, change, change] == recorder.changes

    def test_publish_rejects_what_is_not_a_change(self, bus, recorder):
        """``publish`` refuses anything but Created, Updated or StateChanged."""
        with pytest.raises(TypeError):
            bus.publish(Step(name="a"))
        assert 0 == len(recorder)


# -- seq ----------------------------------------------------------------------------------


class TestSeq:
    def test_created_is_zero_and_each_later_change_adds_one(self, bus, recorder):
        """Created has seq 0 and each later change of the event has one more."""
        with bus:
            handle = Step(name="a").emit(EventState.STARTED)
            handle.update(Step(name="b"))
            handle.update(Step(name="c"))
            handle.complete()
        assert [0, 1, 2, 3] == [c.seq for c in recorder.changes]

    def test_seq_counts_per_event(self, bus, recorder):
        """Two interleaved events each count their own seq."""
        with bus:
            first = Step(name="a").emit()
            second = Step(name="b").emit()
            first.update(Step(name="a2"))
            second.update(Step(name="b2"))
            second.complete()
            first.complete()
        assert [0, 0, 1, 1, 2, 2] == [c.seq for c in recorder.changes]
        assert [first.id, second.id, first.id, second.id, second.id, first.id] == [
            c.id for c in recorder.changes
        ]

    def test_sync_and_async_forms_share_one_counter(self, bus, recorder):
        """Mixing sync and async forms on one handle keeps one seq sequence."""

        async def main(handle):
            await handle.aupdate(Step(name="b"))
            handle.update(Step(name="c"))
            await handle.acomplete()

        with bus:
            handle = Step(name="a").emit()
            asyncio.run(main(handle))
            handle.fail(ValueError("late"))
        assert [0, 1, 2, 3, 4] == [c.seq for c in recorder.changes]

    @settings(max_examples=60, deadline=None)
    @given(
        operations=st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=2),
                st.sampled_from(["update", "complete", "fail", "start", "aupdate"]),
            ),
            max_size=30,
        )
    )
    def test_seq_is_contiguous_for_any_sequence_of_operations(self, operations):
        """For any mix of operations on a few events, each event's seqs run 0, 1, 2, ..."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            handles = [Step(name=str(i)).emit(EventState.STARTED) for i in range(3)]
            for index, operation in operations:
                handle = handles[index]
                if operation == "update":
                    handle.update(Step(name="u"))
                elif operation == "aupdate":
                    asyncio.run(handle.aupdate(Step(name="u")))
                elif operation == "complete":
                    handle.complete()
                elif operation == "fail":
                    handle.fail(ValueError("x"))
                else:
                    handle.set_state(EventState.STARTED)
        for handle in handles:
            seqs = [c.seq for c in recorder.changes if c.id == handle.id]
            assert list(range(len(seqs))) == seqs
        assert 3 + len(operations) == len(recorder)


# -- small rule: emitting from inside a handler ----------------------------------------------


def emitting_handler(kind, log, emit_style):
    """A handler (sync or async) that logs every change and emits once, on the first one."""
    state = {"emitted": False}

    def note(change):
        name = change.event.name if isinstance(change, Created) else "?"
        log.append(("emitter", type(change).__name__, name))
        if state["emitted"]:
            return False
        state["emitted"] = True
        return True

    if kind == "sync":

        def handler(change):
            if note(change):
                Step(name="from-handler").emit()

        return handler

    async def async_handler(change):
        await asyncio.sleep(0)
        if note(change):
            if emit_style == "aemit":
                await Step(name="from-handler").aemit()
            else:
                Step(name="from-handler").emit()

    return async_handler


class TestEmitFromHandler:
    @pytest.mark.parametrize(
        ("kind", "emit_style", "form"),
        [
            ("sync", "emit", "sync"),
            ("sync", "emit", "async"),
            ("async", "aemit", "async"),
            ("async", "emit", "async"),
            ("async", "aemit", "sync"),
            ("async", "emit", "sync"),
        ],
    )
    def test_emitted_change_reaches_every_handler_after_the_current_one(
        self, kind, emit_style, form
    ):
        """A change emitted by a handler goes to every handler, itself too, after the current one."""
        log = []

        def other(change):
            name = change.event.name if isinstance(change, Created) else "?"
            log.append(("other", type(change).__name__, name))

        bus = EventBus([emitting_handler(kind, log, emit_style), other])
        if form == "sync":
            with bus:
                Step(name="outer").emit()
        else:

            async def main():
                async with bus:
                    await Step(name="outer").aemit()

            asyncio.run(main())
        assert [
            ("emitter", "Created", "outer"),
            ("other", "Created", "outer"),
            ("emitter", "Created", "from-handler"),
            ("other", "Created", "from-handler"),
        ] == log

    def test_handler_may_complete_the_event_it_receives(self, bus, recorder):
        """A handler that completes the event whose Created it receives does not deadlock."""

        def completes(change):
            if isinstance(change, Created):
                EventHandle(change.id, change.parent_id, bus=bus).complete()

        bus.add_handler(completes)
        with bus:
            Step(name="a").emit(EventState.STARTED)
        assert [
            ("created", Step(name="a"), EventState.STARTED, 0),
            ("state", EventState.SUCCESS, 1),
        ] == [describe(c) for c in recorder.changes]

    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_runaway_loop_stops_with_an_error_naming_the_limit(self, form):
        """A handler that emits on every change is stopped with an error naming the limit."""
        recorder = RecordingHandler()

        def loops(change):
            Step(name="again").emit()

        bus = EventBus([recorder, loops], max_handler_emits=5)
        if form == "sync":
            with bus, pytest.raises(EventHandlerError) as info:
                Step(name="first").emit()
        else:

            async def main():
                async with bus:
                    await Step(name="first").aemit()

            with pytest.raises(EventHandlerError) as info:
                asyncio.run(main())
        assert "more than 5" in str(info.value)
        assert "max_handler_emits" in str(info.value)
        assert recorder.changes[0].id == info.value.handle.id

    def test_default_limit_stops_a_runaway_loop(self):
        """A bus built without a limit still stops a handler that emits on every change."""

        def loops(change):
            Step(name="again").emit()

        with EventBus([loops]), pytest.raises(EventHandlerError) as info:
            Step(name="first").emit()
        assert "more than 1000" in str(info.value)

    @pytest.mark.parametrize(
        "form",
        [
            "sync",
            "async",
        ],
    )
    def test_chain_of_exactly_the_limit_is_allowed(self, form):
        """Handlers may emit exactly max_handler_emits changes for one change, in both forms."""
        recorder = RecordingHandler()
        emitted = []

        def chains(change):
            if len(emitted) < 3:
                emitted.append(change)
                Step(name=f"link-{len(emitted)}").emit()

        bus = EventBus([recorder, chains], max_handler_emits=3)
        if form == "sync":
            with bus:
                Step(name="first").emit()
        else:

            async def main():
                async with bus:
                    await Step(name="first").aemit()

            asyncio.run(main())
        assert ["first", "link-1", "link-2", "link-3"] == [c.event.name for c in recorder.changes]

    def test_bus_delivers_normally_after_a_runaway(self):
        """After a runaway was stopped, the next emit on the bus is delivered normally."""
        recorder = RecordingHandler()
        looping = [True]

        def loops(change):
            if looping[0]:
                Step(name="again").emit()

        bus = EventBus([recorder, loops], max_handler_emits=2)
        with bus:
            with pytest.raises(EventHandlerError):
                Step(name="first").emit()
            looping[0] = False
            recorder.clear()
            Step(name="calm").emit()
        assert [Step(name="calm")] == [c.event for c in recorder.changes]

    @pytest.mark.parametrize("limit", [0, -1, True, 1.5, "3"])
    def test_max_handler_emits_rejects_bad_values(self, limit):
        """``max_handler_emits`` must be an int of at least 1."""
        with pytest.raises(ValueError):
            EventBus(max_handler_emits=limit)


# -- small rule: as_parent -----------------------------------------------------------------


class TestAsParent:
    def test_with_block_parents_children_and_changes_no_state(self, bus, recorder):
        """``with handle.as_parent()`` parents the block's events and delivers no state change."""
        with bus:
            parent = Step(name="parent").emit()
            with parent.as_parent() as entered:
                Step(name="child").emit()
            Step(name="after").emit()
        assert parent == entered
        assert {
            Step(name="parent"): None,
            Step(name="child"): Step(name="parent"),
            Step(name="after"): None,
        } == lineage(recorder.changes)
        assert 3 == len(recorder)

    def test_async_with_block_parents_children(self, bus, recorder):
        """``async with handle.as_parent()`` parents the block's events."""

        async def main():
            async with bus:
                parent = await Step(name="parent").aemit()
                async with parent.as_parent():
                    await Step(name="child").aemit()

        asyncio.run(main())
        assert {Step(name="parent"): None, Step(name="child"): Step(name="parent")} == lineage(
            recorder.changes
        )

    def test_with_a_function_returns_its_result(self, bus, recorder):
        """``handle.as_parent(fn)`` calls fn with the handle, parents its events, returns its result."""

        def body(handle):
            Step(name="child").emit()
            return ("got", handle.id)

        with bus:
            parent = Step(name="parent").emit()
            result = parent.as_parent(body)
        assert ("got", parent.id) == result
        assert parent.id == recorder.changes[1].parent_id

    def test_with_an_async_function_returns_an_awaitable_of_its_result(self, bus, recorder):
        """``handle.as_parent(async_fn)`` returns an awaitable of fn's result."""

        async def body(handle):
            await Step(name="child").aemit()
            return handle.id

        async def main():
            async with bus:
                parent = await Step(name="parent").aemit()
                return parent.id, await parent.as_parent(body)

        parent_id, result = asyncio.run(main())
        assert parent_id == result
        assert parent_id == recorder.changes[1].parent_id

    def test_noop_handle_as_parent_keeps_the_ambient_parent(self, bus, recorder):
        """Children under the no-op handle's as_parent keep the enclosing scope as parent."""
        with bus, Step(name="outer").in_scope(), EventHandle.noop().as_parent():
            Step(name="child").emit()
        assert Step(name="outer") == lineage(recorder.changes)[Step(name="child")]

    def test_a_parent_scope_object_cannot_be_entered_twice(self, bus):
        """Entering one as_parent() object a second time while it is open is refused."""
        with bus:
            scope = Step(name="parent").emit().as_parent()
            with scope, pytest.raises(RuntimeError), scope:
                pass
