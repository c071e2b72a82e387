"""
Tests of the delivery loops (``alien_events_sdk._dispatch``).

Queued changes and their failures, runaway chains, and changes queued just as a delivery closes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
from collections import Counter

import pytest
from interleave import CarriedThread, PausePoints, Point, Signals

from alien_events_api import (
    Created,
    Event,
    EventHandlerError,
    EventState,
    StateChanged,
    carry_context,
    event_type,
)
from alien_events_sdk import EventBus, RecordingHandler, _dispatch
from alien_events_sdk._dispatch import Dispatcher

MAIN = "MainThread"
WORKER = "late-emitter"
LOOP = "alien-events-handlers"  # the SDK's own loop thread, where sync code runs async handlers


@event_type(tag="DispatchTestStep")
class Step(Event):
    """A test-only event named by its role in the test."""

    name: str


class HandlerBroke(Exception):
    """What the failing test handlers raise."""


# -- where the races are decided -------------------------------------------------------------
#
# A sync delivery looks at its queue for the last time with the first ``len(delivery)`` of
# ``deliver``; an async one when its first ``_adrain`` returns (the async handlers in these
# tests never suspend, so that frame returns once). A drain takes a queued change with
# ``list.pop``. An emitter found a delivery open when it enters ``_queued``, and has queued its
# change once ``list.append`` returned there.

LAST_LOOK = Point(Dispatcher.deliver.__code__, "c_return", "len")
ASYNC_LAST_LOOK = Point(Dispatcher._adrain.__code__, "return")
TAKE = Point(Dispatcher._drain.__code__, "c_call", "pop")
ASYNC_TAKE = Point(Dispatcher._adrain.__code__, "c_call", "pop")
QUEUING = Point(_dispatch._queued.__code__, "call")
QUEUED = Point(_dispatch._queued.__code__, "c_return", "append")
TAKEN_BACK = Point(_dispatch._queued.__code__, "c_return", "remove")


# -- helpers -------------------------------------------------------------------------------


def describe(change):
    """The parts of a change a test can predict: its kind, the event's name or new state, seq."""
    if isinstance(change, Created):
        return ("created", change.event.name, change.seq)
    if isinstance(change, StateChanged):
        return ("state", change.new_state.name, change.seq)
    return ("updated", change.event.name, change.seq)


class Log:
    """A sync handler noting (its name, the change, the delivering thread) in a shared list."""

    def __init__(self, name, entries):
        self.name = name
        self.entries = entries

    def note(self, change):
        self.entries.append((self.name, describe(change), threading.current_thread().name))

    def on_event_change(self, change):
        self.note(change)


class AsyncLog(Log):
    """An async handler noting what ``Log`` notes (it never suspends)."""

    async def on_event_change(self, change):
        self.note(change)


def delivered(names, change, thread):
    """The entries of ``change`` delivered by ``thread`` to each handler in ``names``, in order."""
    return [(name, change, thread) for name in names]


class Spawner:
    """
    A handler that, on the Created of ``start``, runs ``job`` in a thread carrying its context.

    That thread carries the delivery in progress along with the bus, as any worker a handler
    starts with ``carry_context`` does. ``then`` runs in the handler once the thread started.
    """

    def __init__(self, job, *, then=None, carry=carry_context):
        self.job = job
        self.then = then
        self.carry = carry
        self.worker = None

    def on_event_change(self, change):
        if isinstance(change, Created) and change.event.name == "start":
            self.worker = CarriedThread(self.job, WORKER, self.carry).start()
            if self.then is not None:
                self.then()

    def join(self):
        """Wait for the worker; return what went wrong in it (an empty list if nothing)."""
        if self.worker is None:
            return ["the start handler never ran"]
        if not self.worker.join():
            return ["the worker thread is still running"]
        return self.worker.errors


def copy_context_run(fn):
    """The other way to carry a context into a thread: ``contextvars.copy_context().run``."""
    return functools.partial(contextvars.copy_context().run, fn)


def run_async(bus):
    """Emit ``start`` with ``aemit`` inside ``async with bus`` on a fresh event loop."""

    async def main():
        async with bus:
            await Step(name="start").aemit()

    asyncio.run(main())


def emit_start(bus, form):
    """Emit ``start`` on ``bus``: with ``emit`` in ``with bus`` (sync) or as ``run_async`` does."""
    if form == "sync":
        with bus:
            Step(name="start").emit()
    else:
        run_async(bus)


# -- queued changes ------------------------------------------------------------------------


class TestQueuedChanges:
    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_queued_changes_reach_every_handler_oldest_first(self, form):
        """Changes handlers emit are delivered to every handler in the order they were emitted."""
        entries = []

        def emits(change):
            if not isinstance(change, Created):
                return
            children = {"start": ["a", "b"], "a": ["a.1"]}.get(change.event.name, [])
            for child in children:
                Step(name=child).emit()

        bus = EventBus([emits, Log("first", entries), AsyncLog("second", entries)])
        emit_start(bus, form)
        assert [
            (handler, ("created", name, 0))
            for name in ("start", "a", "b", "a.1")
            for handler in ("first", "second")
        ] == [entry[:2] for entry in entries]

    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_failures_on_queued_changes_are_raised_together_after_every_delivery(self, form):
        """Handlers failing on queued changes still get them all; one error lists every failure."""
        raised, seen = [], []
        recorder = RecordingHandler()

        def emits(change):
            if isinstance(change, Created) and change.event.name == "start":
                Step(name="a").emit()
                Step(name="b").emit()
                seen.append("emits returned")

        def fails_on_queued(label):
            def handler(change):
                if change.event.name != "start":
                    error = HandlerBroke(f"{label} broke on {change.event.name}")
                    raised.append(error)
                    raise error

            return handler

        bus = EventBus([emits, fails_on_queued("one"), recorder, fails_on_queued("two")])
        with pytest.raises(EventHandlerError) as info:
            emit_start(bus, form)
        assert ["emits returned"] == seen
        assert ["start", "a", "b"] == [c.event.name for c in recorder.changes]
        assert [
            "one broke on a",
            "two broke on a",
            "one broke on b",
            "two broke on b",
        ] == [str(error) for error in info.value.errors]
        assert tuple(raised) == info.value.errors
        assert raised[0] is info.value.__cause__
        assert recorder.changes[0].id == info.value.handle.id

    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_failure_on_the_emitted_change_comes_before_failures_on_queued_ones(self, form):
        """A failure on the change being delivered is listed before failures on queued changes."""

        def emits(change):
            if change.event.name == "start":
                Step(name="queued").emit()

        def fails(change):
            raise HandlerBroke(change.event.name)

        bus = EventBus([emits, fails])
        with pytest.raises(EventHandlerError) as info:
            emit_start(bus, form)
        assert ["start", "queued"] == [str(error) for error in info.value.errors]


# -- runaway chains ------------------------------------------------------------------------


class TestRunaway:
    @pytest.mark.parametrize(
        ("emit_style", "form"),
        [("aemit", "async"), ("emit", "async"), ("aemit", "sync"), ("emit", "sync")],
    )
    def test_async_handler_emitting_on_every_change_is_stopped_after_the_limit(
        self, emit_style, form
    ):
        """An async handler that emits on every change gets exactly the limit of chained changes, then an error."""
        recorder = RecordingHandler()

        async def loops(change):
            await asyncio.sleep(0)
            if emit_style == "aemit":
                await Step(name="again").aemit()
            else:
                Step(name="again").emit()

        bus = EventBus([recorder, loops], max_handler_emits=3)
        with pytest.raises(EventHandlerError) as info:
            emit_start(bus, form)
        assert ["start", "again", "again", "again"] == [c.event.name for c in recorder.changes]
        (error,) = info.value.errors
        assert isinstance(error, RuntimeError)
        assert "more than 3" in str(error)

    @pytest.mark.parametrize("form", ["sync", "async"])
    def test_runaway_error_comes_after_the_handler_failures_before_it(self, form):
        """When a runaway is stopped, handler failures seen before it stay first in ``errors``."""

        def loops(change):
            Step(name="again").emit()

        def fails_on_start(change):
            if change.event.name == "start":
                raise HandlerBroke("start")

        bus = EventBus([loops, fails_on_start], max_handler_emits=2)
        with pytest.raises(EventHandlerError) as info:
            emit_start(bus, form)
        first, runaway = info.value.errors
        assert "start" == str(first)
        assert "more than 2" in str(runaway)


# -- a change queued by another thread as the delivery closes --------------------------------


class TestChangeQueuedAsTheDeliveryCloses:
    @pytest.mark.parametrize("carry", [carry_context, copy_context_run], ids=["carry", "copy"])
    def test_change_queued_after_the_last_look_is_delivered_by_the_closing_delivery(self, carry):
        """A change a carried thread queues after the delivery's last look at its queue is still delivered by it, once."""
        signals, entries = Signals(), []

        def job():
            signals.wait("go")
            Step(name="late").emit()  # the delivery is still open: the change is queued
            signals.set("late emitted")

        spawner = Spawner(job, carry=carry)
        bus = EventBus([spawner, Log("first", entries), Log("second", entries)])
        with bus, PausePoints((LAST_LOOK, signals.handshake("go", "late emitted"))) as points:
            Step(name="start").emit()
        assert [] == spawner.join()
        assert [] == signals.problems
        assert 1 == points.reached
        assert [
            *delivered(["first", "second"], ("created", "start", 0), MAIN),
            *delivered(["first", "second"], ("created", "late", 0), MAIN),
        ] == entries

    def test_change_queued_after_the_last_async_look_is_delivered_by_the_closing_delivery(self):
        """A change a carried thread queues as an async delivery closes is still delivered by it, once."""
        signals, entries = Signals(), []

        def job():
            signals.wait("go")
            Step(name="late").emit()
            signals.set("late emitted")

        spawner = Spawner(job)
        bus = EventBus([spawner, Log("first", entries), AsyncLog("second", entries)])
        with PausePoints((ASYNC_LAST_LOOK, signals.handshake("go", "late emitted"))) as points:
            run_async(bus)
        assert [] == spawner.join()
        assert [] == signals.problems
        assert 1 == points.reached
        assert [
            *delivered(["first", "second"], ("created", "start", 0), MAIN),
            *delivered(["first", "second"], ("created", "late", 0), MAIN),
        ] == entries

    def test_failure_on_a_change_queued_at_close_is_raised_by_the_delivering_emit(self):
        """A handler failing on a change queued as the delivery closed fails the delivering emit, not the queuing one."""
        signals, recorder = Signals(), RecordingHandler()

        def job():
            signals.wait("go")
            handle = Step(name="late").emit()
            signals.set("late emitted")
            return handle

        def fails_on_late(change):
            if change.event.name == "late":
                raise HandlerBroke("late")

        spawner = Spawner(job)
        bus = EventBus([spawner, fails_on_late, recorder])
        with (
            bus,
            PausePoints((LAST_LOOK, signals.handshake("go", "late emitted"))),
            pytest.raises(EventHandlerError) as info,
        ):
            Step(name="start").emit()
        assert [] == spawner.join()
        assert [] == signals.problems
        assert ["start", "late"] == [c.event.name for c in recorder.changes]
        assert ["late"] == [str(error) for error in info.value.errors]
        assert recorder.changes[1].id == spawner.worker.result.id

    def test_emitter_finding_the_delivery_closed_takes_its_change_back_and_delivers_it(self):
        """An emitter that saw the delivery open but queues after it closed delivers its change itself, once."""
        signals, entries = Signals(), []

        def job():
            with PausePoints((QUEUING, signals.handshake("queuing", "closed"))):
                return Step(name="late").emit()

        spawner = Spawner(job, then=lambda: signals.wait("queuing"))
        bus = EventBus([spawner, Log("first", entries), AsyncLog("second", entries)])
        with bus:
            Step(name="start").emit()
            signals.set("closed")
            assert [] == spawner.join()
        assert [] == signals.problems
        assert [
            ("first", ("created", "start", 0), MAIN),
            ("second", ("created", "start", 0), LOOP),
            ("first", ("created", "late", 0), WORKER),
            ("second", ("created", "late", 0), LOOP),
        ] == entries

    def test_change_the_delivery_took_first_is_not_delivered_again_by_its_emitter(self):
        """When the delivery takes a queued change before its emitter sees the close, the emitter leaves it be."""
        signals, entries = Signals(), []

        def job():
            with PausePoints((QUEUED, signals.handshake("queued", "closed"))):
                return Step(name="late").emit()

        spawner = Spawner(job, then=lambda: signals.wait("queued"))
        bus = EventBus([spawner, Log("first", entries), Log("second", entries)])
        with bus:
            Step(name="start").emit()
            signals.set("closed")
            assert [] == spawner.join()
        assert [] == signals.problems
        assert [
            *delivered(["first", "second"], ("created", "start", 0), MAIN),
            *delivered(["first", "second"], ("created", "late", 0), MAIN),
        ] == entries
        assert not spawner.worker.result.is_noop

    def test_emitter_taking_its_change_back_before_the_sync_drain_takes_it_delivers_it_once(
        self,
    ):
        """An emitter that takes back its change between the closing delivery's look and take delivers it, once."""
        signals, entries = Signals(), []

        def job():
            signals.wait("go")
            with PausePoints(
                (QUEUED, signals.handshake("queued", "take")),
                (TAKEN_BACK, lambda: signals.set("taken back")),
            ):
                Step(name="late").emit()  # waits for the closing delivery, then delivers

        spawner = Spawner(job)
        bus = EventBus([spawner, Log("first", entries), Log("second", entries)])
        with (
            bus,
            PausePoints(
                (LAST_LOOK, signals.handshake("go", "queued")),
                (TAKE, signals.handshake("take", "taken back")),
            ) as points,
        ):
            Step(name="start").emit()
        assert [] == spawner.join()
        assert [] == signals.problems
        assert 2 == points.reached
        assert [
            *delivered(["first", "second"], ("created", "start", 0), MAIN),
            *delivered(["first", "second"], ("created", "late", 0), WORKER),
        ] == entries

    def test_emitter_taking_its_change_back_before_the_async_drain_takes_it_delivers_it_once(
        self,
    ):
        """An emitter that takes back its change before the closing async delivery takes it delivers it, once."""
        signals, entries = Signals(), []

        def job():
            signals.wait("go")

            async def emit():
                await Step(name="late").aemit()

            with PausePoints(
                (QUEUED, signals.handshake("queued", "take")),
                (TAKEN_BACK, lambda: signals.set("taken back")),
            ):
                asyncio.run(emit())  # its task copies the carried context

        spawner = Spawner(job)
        bus = EventBus([spawner, Log("first", entries), AsyncLog("second", entries)])
        with PausePoints(
            (ASYNC_LAST_LOOK, signals.handshake("go", "queued")),
            (ASYNC_TAKE, signals.handshake("take", "taken back")),
        ) as points:
            run_async(bus)
        assert [] == spawner.join()
        assert [] == signals.problems
        assert 2 == points.reached
        assert [
            *delivered(["first", "second"], ("created", "start", 0), MAIN),
            *delivered(["first", "second"], ("created", "late", 0), WORKER),
        ] == entries

    def test_next_change_of_the_thread_that_queued_at_close_is_delivered_after_it(self):
        """A carried thread's changes reach handlers in its order even when the first was queued as the delivery closed."""
        signals, entries, early = Signals(), [], []

        def job():
            signals.wait("go")
            handle = Step(name="late").emit(EventState.STARTED)  # queued
            signals.set("created queued")
            signals.wait("closed")
            handle.complete()  # the delivery is closed: delivered by this thread
            signals.set("completed")

        spawner = Spawner(job)
        bus = EventBus([spawner, Log("first", entries), Log("second", entries)])
        with (
            bus,
            PausePoints(
                (LAST_LOOK, signals.handshake("go", "created queued")),
                # Here the closing delivery is about to take the queued Created: ``complete``
                # must wait for it (a moment is enough to see it does not finish first).
                (
                    TAKE,
                    lambda: (
                        signals.set("closed"),
                        early.append(signals.seen_within("completed", 0.3)),
                    ),
                ),
            ),
        ):
            Step(name="start").emit()
        assert [] == spawner.join()
        assert [False] == early
        late = [entry[:2] for entry in entries if entry[1][1] != "start"]
        assert [
            ("first", ("created", "late", 0)),
            ("second", ("created", "late", 0)),
            ("first", ("state", "SUCCESS", 1)),
            ("second", ("state", "SUCCESS", 1)),
        ] == late

    @pytest.mark.parametrize("form", ["emit", "aemit"])
    def test_next_change_after_one_queued_as_an_async_delivery_closed_comes_after_it(self, form):
        """As an async delivery closes, a carried thread's next change (sync or async) waits for its queued one."""
        signals, entries, early = Signals(), [], []

        def job():
            signals.wait("go")
            handle = Step(name="late").emit(EventState.STARTED)  # queued
            signals.set("created queued")
            signals.wait("closed")
            if form == "emit":
                handle.complete()  # a thread without an event loop: it may wait
            else:
                asyncio.run(handle.acomplete())
            signals.set("completed")

        spawner = Spawner(job)
        bus = EventBus([spawner, Log("first", entries), AsyncLog("second", entries)])
        with PausePoints(
            (ASYNC_LAST_LOOK, signals.handshake("go", "created queued")),
            (
                ASYNC_TAKE,
                lambda: (
                    signals.set("closed"),
                    early.append(signals.seen_within("completed", 0.3)),
                ),
            ),
        ):
            run_async(bus)
        assert [] == spawner.join()
        assert [False] == early
        late = [entry[:2] for entry in entries if entry[1][1] != "start"]
        assert [
            ("first", ("created", "late", 0)),
            ("second", ("created", "late", 0)),
            ("first", ("state", "SUCCESS", 1)),
            ("second", ("state", "SUCCESS", 1)),
        ] == late

    def test_many_carried_threads_emitting_as_deliveries_close_deliver_each_change_once(self):
        """Carried threads emitting while their delivery closes, left to the scheduler, deliver every change exactly once."""
        rounds, per_round = 200, 3
        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        workers = []

        def spawns(change):
            if change.event.name.startswith("start"):
                for index in range(per_round):
                    name = f"late-{change.event.name[len('start-') :]}-{index}"
                    workers.append(
                        CarriedThread(functools.partial(Step(name=name).emit), WORKER).start()
                    )

        first, second = RecordingHandler(), RecordingHandler()
        try:
            with EventBus([spawns, first, second]):
                for round_ in range(rounds):
                    Step(name=f"start-{round_}").emit()
                assert all(worker.join() for worker in workers)
        finally:
            sys.setswitchinterval(previous)
        assert [] == [error for worker in workers for error in worker.errors]
        expected = Counter(
            [f"start-{r}" for r in range(rounds)]
            + [f"late-{r}-{i}" for r in range(rounds) for i in range(per_round)]
        )
        assert expected == Counter(c.event.name for c in first.changes)
        assert expected == Counter(c.event.name for c in second.changes)
        for recorder in (first, second):
            names = [c.event.name for c in recorder.changes]
            assert all(
                names.index(f"start-{r}") < names.index(f"late-{r}-{i}")
                for r in range(rounds)
                for i in range(per_round)
            )
