"""
Tests of the handler loop thread (``alien_events_sdk._loop``).

How sync code runs async handlers: on one daemon loop thread, restarted when it ended or forked.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import signal
import threading
import warnings

import pytest
from interleave import TIMEOUT, CarriedThread, PausePoints, Point, Signals

from alien_events_api import Event, EventHandlerError, event_type
from alien_events_sdk import EventBus, _loop

LOOP = "alien-events-handlers"
HANG_TIMEOUT = 5.0
"""Seconds to wait for something that hangs today (a sound emit takes milliseconds)."""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@event_type(tag="LoopTestStep")
class Step(Event):
    """A test-only event named by its role in the test."""

    name: str


# -- helpers -------------------------------------------------------------------------------


def loop_thread_of_a_sync_emit():
    """The thread on which a sync emit runs an async handler."""
    threads = []

    async def notes(change):
        threads.append(threading.current_thread())

    with EventBus([notes]):
        Step(name="where").emit()
    (thread,) = threads
    return thread


def end_the_loop_thread():
    """Make the loop thread end (its loop stops after one delivery); return it once it ended."""
    seen = []

    async def stops(change):
        loop = asyncio.get_running_loop()
        seen.append((loop, threading.current_thread()))
        loop.call_soon(loop.stop)  # after the delivery's own callbacks: the emit still returns

    with EventBus([stops]):
        Step(name="stop").emit()
    ((loop, thread),) = seen
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"the stopped loop thread still ran after {TIMEOUT:.0f} s"
    loop.close()
    return thread


def in_forked_child(fn, timeout=TIMEOUT):
    """
    Run ``fn`` in a forked child; return ``"ok <repr of its result>"`` or ``"raised <error>"``.

    ``None`` if the child did not answer within ``timeout`` seconds (it is killed then). The child
    always leaves with ``os._exit``, never returning into pytest.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                answer = f"ok {fn()!r}"
            except BaseException as exc:
                answer = f"raised {exc!r}"
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = None
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if ready:
            answer = os.read(read_end, 65536).decode()
    finally:
        os.close(read_end)
        if answer is None:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return answer


def where_a_child_runs_async_handlers():
    """In a child: the name of the thread its sync emit ran an async handler on, and if new."""
    thread = loop_thread_of_a_sync_emit()
    return thread.name, thread.ident != threading.get_ident()


# -- the loop thread -----------------------------------------------------------------------


class TestLoopThread:
    def test_sync_emits_run_async_handlers_on_one_named_daemon_thread(self):
        """Every sync emit runs async handlers on the same daemon thread, named alien-events-handlers."""
        first, second = loop_thread_of_a_sync_emit(), loop_thread_of_a_sync_emit()
        assert first is second
        assert LOOP == first.name
        assert first.daemon
        assert threading.current_thread() is not first

    def test_loop_thread_that_ended_is_replaced_on_the_next_sync_emit(self):
        """After the loop thread ended, the next sync emit runs async handlers on a new one."""
        ended = end_the_loop_thread()
        thread = loop_thread_of_a_sync_emit()
        assert ended is not thread
        assert LOOP == thread.name
        assert thread.is_alive()
        assert thread is loop_thread_of_a_sync_emit()

    def test_threads_finding_the_loop_thread_ended_together_start_only_one(self):
        """Two sync emits that both find the loop thread ended start one new loop thread, not two."""
        end_the_loop_thread()
        signals = Signals()
        starting = Point(asyncio.new_event_loop.__code__, "call")
        entering = Point(_loop._start.__code__, "call")

        def first():
            with PausePoints((starting, signals.handshake("first starting", "second entering"))):
                return loop_thread_of_a_sync_emit()

        def second():
            signals.wait("first starting")
            with PausePoints((entering, lambda: signals.set("second entering"))):
                return loop_thread_of_a_sync_emit()

        threads = [CarriedThread(first, "first").start(), CarriedThread(second, "second").start()]
        assert all(thread.join() for thread in threads), "an emitting thread is still running"
        assert [] == signals.problems
        assert [] == [error for thread in threads for error in thread.errors]
        assert threads[0].result is threads[1].result
        assert [threads[0].result] == [t for t in threading.enumerate() if t.name == LOOP]

    @pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
    def test_system_exit_from_an_async_handler_comes_out_of_the_sync_emit(self, raised):
        """A SystemExit or Ctrl-C raised by an async handler under a sync emit comes out of the emit, and the loop thread lives on."""
        seen, outcome = [], []

        async def exits(change):
            seen.append(threading.current_thread())
            raise raised

        def emit():
            with EventBus([exits]):
                Step(name="exit").emit()

        emitter = CarriedThread(emit, "emitter").start()
        finished = emitter.join(HANG_TIMEOUT)
        outcome.extend(emitter.errors)
        assert finished, f"the sync emit was still waiting after {HANG_TIMEOUT:.0f} s"
        (error,) = outcome
        assert type(raised) is type(error)
        (loop_thread,) = seen
        assert loop_thread.is_alive()
        assert [loop_thread] == [t for t in threading.enumerate() if t.name == LOOP]


# -- a sync emit from the loop thread itself -------------------------------------------------


def emit_to_another_bus_from_the_loop_thread(form):
    """
    From an async handler run by a sync emit, emit on a bus with an async handler.

    Return what the inner emit raised (or None) and the changes the inner handler got.
    """
    inner_changes, outcomes = [], []

    async def inner(change):
        inner_changes.append(change)

    inner_bus = EventBus([inner])

    async def outer(change):
        try:
            if form == "sync":
                with inner_bus:
                    Step(name="inner").emit()
            else:
                async with inner_bus:
                    await Step(name="inner").aemit()
        except EventHandlerError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)

    with EventBus([outer]):
        Step(name="outer").emit()
    (outcome,) = outcomes
    return outcome, inner_changes


class TestSyncEmitFromTheLoopThread:
    def test_sync_emit_reaching_an_async_handler_from_the_loop_thread_is_refused(self):
        """A sync emit that would wait on the loop thread from that thread fails with advice instead of deadlocking."""
        outcome, inner_changes = emit_to_another_bus_from_the_loop_thread("sync")
        assert isinstance(outcome, EventHandlerError)
        cause = outcome.__cause__
        assert RuntimeError is type(cause)
        assert "from the handler loop thread itself" in str(cause)
        assert "aemit" in str(cause)
        assert [] == inner_changes

    def test_refused_async_handler_call_leaves_no_never_awaited_coroutine(self):
        """The refused call's coroutine is closed, so no 'never awaited' warning follows."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            emit_to_another_bus_from_the_loop_thread("sync")
            gc.collect()
        assert [] == [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    def test_async_form_from_the_loop_thread_reaches_the_async_handler(self):
        """The async forms, as the refusal advises, deliver to async handlers from the loop thread."""
        outcome, inner_changes = emit_to_another_bus_from_the_loop_thread("async")
        assert outcome is None
        assert ["inner"] == [c.event.name for c in inner_changes]


# -- fork ----------------------------------------------------------------------------------


@needs_fork
class TestFork:
    def test_forked_child_runs_async_handlers_on_a_loop_thread_of_its_own(self):
        """A child forked after the loop thread started runs async handlers on a new loop thread."""
        parent_thread = loop_thread_of_a_sync_emit()
        assert parent_thread.is_alive()
        answer = in_forked_child(where_a_child_runs_async_handlers)
        assert f"ok {(LOOP, True)!r}" == answer
        assert parent_thread is loop_thread_of_a_sync_emit()

    def test_child_forked_while_another_thread_starts_the_loop_thread_can_start_its_own(self):
        """A child forked while another thread is starting the loop thread still runs async handlers."""
        end_the_loop_thread()  # so that the next sync emit starts a new loop thread
        signals = Signals()
        starting = Point(asyncio.new_event_loop.__code__, "call")

        def starts():
            with PausePoints((starting, signals.handshake("starting", "forked"))):
                return loop_thread_of_a_sync_emit()

        starter = CarriedThread(starts, "starter").start()
        try:
            assert signals.wait("starting"), "the starter never began starting the loop thread"
            answer = in_forked_child(where_a_child_runs_async_handlers, HANG_TIMEOUT)
        finally:
            signals.set("forked")
            assert starter.join(), "the starter thread is still running"
        assert [] == starter.errors
        assert LOOP == starter.result.name
        assert f"ok {(LOOP, True)!r}" == answer, "the child did not answer: it is deadlocked"
