"""
``EventBus`` itself: building it, making it current, and how its emits end when interrupted.

The bus delivers every change to its handlers before the emitting call returns; these tests
pin what the other test files reach only indirectly: ``with_handlers``, ``run`` with a sync
function that returns an awaitable, leaving a bus that was never entered, an ids factory whose
signature cannot be read, and an async emit cut short by cancellation.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect

import pytest

from alien_events_api import AlienEvent, EventState, StateChanged
from alien_events_sdk import EventBus, RecordingHandler


class TestBuilding:
    def test_with_handlers_delivers_to_the_handlers_in_the_given_order(self):
        """``EventBus.with_handlers`` keeps its handlers in order and each change reaches them in that order."""
        order = []

        def labelled(name):
            return lambda change: order.append(name)

        handlers = [labelled("a"), labelled("b"), labelled("c")]
        bus = EventBus.with_handlers(handlers)
        bus.add_handler(labelled("d"))

        with bus:
            AlienEvent.Finished().emit()
            AlienEvent.Finished().emit()

        assert ["a", "b", "c", "d"] * 2 == order
        assert tuple(handlers) == bus.handlers[:3]


class TestMakingCurrent:
    def test_run_of_a_sync_function_returning_a_coroutine_runs_it_with_the_bus_current(
        self, bus, recorder
    ):
        """``bus.run(lambda: main())`` returns an awaitable whose body runs with the bus current."""

        async def main():
            AlienEvent.BuildingStack(stack="s").emit()
            await asyncio.sleep(0)
            return EventBus.current()

        awaitable = bus.run(lambda: main())  # noqa: PLW0108  (a sync fn returning a coroutine)

        assert [] == recorder.changes
        assert EventBus.current() is None
        assert bus is asyncio.run(awaitable)
        assert [AlienEvent.BuildingStack(stack="s")] == [c.event for c in recorder.changes]
        assert EventBus.current() is None

    def test_exit_without_enter_is_a_runtime_error(self):
        """Leaving a bus that was never entered is a RuntimeError that says so."""
        with pytest.raises(RuntimeError) as info:
            EventBus().__exit__(None, None, None)

        assert "EventBus.__exit__ without a matching __enter__ in this context" == str(info.value)

    def test_exit_in_another_context_than_the_enter_is_a_runtime_error(self, bus):
        """A bus entered inside a copied context cannot be left from the outer one, which it never changed."""
        inner = contextvars.copy_context()
        inner.run(bus.__enter__)

        with pytest.raises(RuntimeError):
            bus.__exit__(None, None, None)

        assert EventBus.current() is None
        assert bus is inner.run(EventBus.current)
        inner.run(bus.__exit__, None, None, None)
        assert inner.run(EventBus.current) is None


class TestIds:
    def test_a_factory_without_a_readable_signature_keeps_its_own_type_error(self):
        """When an ids factory's signature cannot be read, the TypeError it raised for ``key=`` is passed on unchanged."""
        with pytest.raises(ValueError):
            inspect.signature(max)  # a builtin without a signature, as C extensions often are
        bus = EventBus(ids=max)

        with bus, pytest.raises(TypeError) as info:
            AlienEvent.Finished().emit(key="k")

        assert "'>' not supported between instances of" in str(info.value)
        assert "needs an ids factory" not in str(info.value)

    def test_a_factory_with_a_signature_that_refuses_a_key_gets_advice(self):
        """A two-argument ids factory used with ``key=`` is a TypeError saying how to fix it."""

        def two_arguments(parent_id, event):
            return "fixed"

        with EventBus(ids=two_arguments), pytest.raises(TypeError) as info:
            AlienEvent.Finished().emit(key="k")

        assert "needs an ids factory that takes (parent_id, event, key)" in str(info.value)


class SlowFirstDelivery:
    """An async handler that waits on the first change it gets, so the emitter can be cancelled."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.seen = 0

    async def on_event_change(self, change):
        self.seen += 1
        if 1 == self.seen:
            self.waiting.set()
            await asyncio.sleep(60)


async def cancel_while_delivering(state: EventState, recorder: RecordingHandler) -> None:
    """Start an ``aemit`` in ``state``, cancel it while a handler awaits, and wait for the end."""
    slow = SlowFirstDelivery()
    bus = EventBus([recorder, slow])

    async def emit():
        async with bus:
            await AlienEvent.PushingImage(image="api").aemit(state)

    task = asyncio.create_task(emit())
    await slow.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class TestCancelledAsyncEmit:
    def test_a_cancelled_started_emit_ends_its_event_as_cancelled(self, recorder):
        """An ``aemit`` in STARTED cancelled mid-delivery delivers a FAILED ending with a CANCELLED error."""
        asyncio.run(cancel_while_delivering(EventState.STARTED, recorder))

        created, ended = recorder.changes
        assert StateChanged is type(ended)
        assert (created.id, EventState.FAILED, "CANCELLED") == (
            ended.id,
            ended.new_state,
            ended.error.code,
        )

    @pytest.mark.parametrize("state", [EventState.NONE, EventState.SUCCESS])
    def test_a_cancelled_emit_of_an_event_with_no_end_adds_no_ending(self, recorder, state):
        """An ``aemit`` that is not STARTED, cancelled mid-delivery, delivers its Created and nothing else."""
        asyncio.run(cancel_while_delivering(state, recorder))

        (created,) = recorder.changes
        assert state == created.state
