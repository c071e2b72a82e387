"""
Concurrency: many threads and many asyncio tasks emitting at once, on one bus and on many.

Every change must be delivered exactly once, each event's ``seq`` must run 0, 1, 2, ... in
delivery order, ids must be unique, and parents must never cross from one thread or task to
another.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    Created,
    Event,
    EventState,
    StateChanged,
    Updated,
    carry_context,
    event_type,
)
from alien_events_sdk import EventBus, RecordingHandler, set_default_bus

THREADS = 8
LIFECYCLES_PER_THREAD = 500
TASKS = 500
LIFECYCLES_PER_TASK = 2
CHANGES_PER_LIFECYCLE = 5  # scope created, leaf created, leaf updated, leaf done, scope done


@event_type(tag="ConcurrencyTestWork")
class Work(Event):
    """One piece of a worker's tree: its root, a lifecycle scope, or a leaf inside it."""

    worker: int
    n: int
    role: str


@event_type(tag="ConcurrencyTestNode")
class Node(Event):
    """A node of a generated tree, named by its path from the root."""

    path: str


class AsyncRecorder:
    """An async handler that yields to the loop before recording each change."""

    def __init__(self):
        self.changes = []

    async def on_event_change(self, change):
        await asyncio.sleep(0)
        self.changes.append(change)


@pytest.fixture(autouse=True)
def _switch_threads_often():
    """Make the interpreter switch threads very often, so that threads really interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def worker_switches(changes):
    """How many times consecutive changes in the stream come from different workers."""
    workers = [c.event.worker for c in changes if isinstance(c, Created)]
    return sum(1 for a, b in itertools.pairwise(workers) if a != b)


# -- the work each thread or task does -------------------------------------------------------


def lifecycle(worker, n):
    """A scope holding one leaf event that starts, makes progress and completes."""
    with Work(worker=worker, n=n, role="scope").in_scope():
        leaf = Work(worker=worker, n=n, role="leaf").emit(EventState.STARTED)
        leaf.update(Work(worker=worker, n=n, role="leaf-progress"))
        leaf.complete()


def thread_work(worker, count, barrier):
    """A root scope with ``count`` lifecycles inside, started together with the other threads."""
    barrier.wait()
    with Work(worker=worker, n=-1, role="root").in_scope():
        for n in range(count):
            lifecycle(worker, n)


async def alifecycle(worker, n):
    """Async twin of ``lifecycle``, yielding to other tasks between steps."""
    async with Work(worker=worker, n=n, role="scope").in_scope():
        await asyncio.sleep(0)
        leaf = await Work(worker=worker, n=n, role="leaf").aemit(EventState.STARTED)
        await asyncio.sleep(0)
        await leaf.aupdate(Work(worker=worker, n=n, role="leaf-progress"))
        await asyncio.sleep(0)
        await leaf.acomplete()


async def task_work(worker, count):
    """Async twin of ``thread_work``."""
    async with Work(worker=worker, n=-1, role="root").in_scope():
        for n in range(count):
            await alifecycle(worker, n)


def run_threads(target, args_per_thread):
    """Start one thread per argument tuple, all at once, and wait for all of them."""
    threads = [threading.Thread(target=target, args=args) for args in args_per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- the checks ------------------------------------------------------------------------------


def check_stream(changes, workers, count, root_parent=None):
    """
    Check a recorded stream of the workers' trees; return the Created changes by id.

    Exactly once per (id, seq); seq 0, 1, 2, ... per event in delivery order; unique ids;
    roots under ``root_parent``, scopes under their own worker's root, leaves under their own
    scope; every event ends SUCCESS.
    """
    workers = list(workers)
    assert len(workers) * (2 + CHANGES_PER_LIFECYCLE * count) == len(changes)
    assert {1} == set(Counter((c.id, c.seq) for c in changes).values())

    seqs = defaultdict(list)
    for change in changes:
        seqs[change.id].append(change.seq)
    assert {event_id: list(range(len(s))) for event_id, s in seqs.items()} == dict(seqs)

    created = [c for c in changes if isinstance(c, Created)]
    by_id = {c.id: c for c in created}
    assert len(created) == len(by_id)
    assert len(workers) * (1 + 2 * count) == len(by_id)

    expected_parents, actual_parents = {}, {}
    for change in created:
        work = change.event
        key = (work.worker, work.n, work.role)
        if work.role == "root":
            expected_parents[key] = root_parent
        elif work.role == "scope":
            expected_parents[key] = (work.worker, -1, "root")
        else:
            expected_parents[key] = (work.worker, work.n, "scope")
        parent = by_id.get(change.parent_id)
        actual_parents[key] = (
            change.parent_id
            if parent is None
            else (parent.event.worker, parent.event.n, parent.event.role)
        )
    assert expected_parents == actual_parents
    assert {(w, n, role) for w in workers for n in range(count) for role in ("scope", "leaf")} | {
        (w, -1, "root") for w in workers
    } == set(actual_parents)

    updates = [c for c in changes if isinstance(c, Updated)]
    assert len(workers) * count == len(updates)
    assert {(u.event.worker, u.event.n) for u in updates} == {
        (by_id[u.id].event.worker, by_id[u.id].event.n) for u in updates
    }

    final = {c.id: c.new_state for c in changes if isinstance(c, StateChanged)}
    assert dict.fromkeys(by_id, EventState.SUCCESS) == final
    return by_id


# -- threads ---------------------------------------------------------------------------------


class TestThreads:
    def test_threads_sharing_one_bus_get_every_change_exactly_once(self):
        """8 threads x 500 lifecycles on one bus: each change once, seq in order, no crossed parents."""
        recorder = RecordingHandler()
        bus = EventBus([recorder])
        barrier = threading.Barrier(THREADS)
        run_threads(
            bus.run,
            [(thread_work, w, LIFECYCLES_PER_THREAD, barrier) for w in range(THREADS)],
        )
        check_stream(recorder.changes, range(THREADS), LIFECYCLES_PER_THREAD)
        assert worker_switches(recorder.changes) > THREADS  # the threads did interleave

    def test_threads_on_separate_buses_each_get_only_their_own_changes(self):
        """8 threads each on its own bus: every bus gets exactly its own thread's changes."""
        recorders = [RecordingHandler() for _ in range(THREADS)]
        barrier = threading.Barrier(THREADS)
        run_threads(
            lambda w: EventBus([recorders[w]]).run(thread_work, w, LIFECYCLES_PER_THREAD, barrier),
            [(w,) for w in range(THREADS)],
        )
        for worker, recorder in enumerate(recorders):
            check_stream(recorder.changes, [worker], LIFECYCLES_PER_THREAD)

    def test_threads_sharing_a_bus_with_an_async_handler(self):
        """Threads sharing a bus whose async handler runs on the SDK loop still get each change once."""
        recorder, async_recorder = RecordingHandler(), AsyncRecorder()
        bus = EventBus([recorder, async_recorder])
        barrier = threading.Barrier(THREADS)
        run_threads(bus.run, [(thread_work, w, 100, barrier) for w in range(THREADS)])
        check_stream(recorder.changes, range(THREADS), 100)
        check_stream(async_recorder.changes, range(THREADS), 100)
        assert Counter(recorder.changes) == Counter(async_recorder.changes)

    def test_threads_on_the_process_default_bus(self):
        """Plain threads with no context, all reaching the process default bus, never cross."""
        recorder = RecordingHandler()
        set_default_bus(EventBus([recorder]))
        barrier = threading.Barrier(THREADS)
        run_threads(thread_work, [(w, LIFECYCLES_PER_THREAD, barrier) for w in range(THREADS)])
        check_stream(recorder.changes, range(THREADS), LIFECYCLES_PER_THREAD)

    def test_carried_context_puts_every_thread_under_the_callers_scope(self):
        """Threads started with carry_context inside a scope all parent their roots to it."""
        recorder = RecordingHandler()
        barrier = threading.Barrier(THREADS)
        with EventBus([recorder]), Work(worker=-1, n=-1, role="main").in_scope() as main:
            run_threads(
                carry_context(thread_work),
                [(w, LIFECYCLES_PER_THREAD, barrier) for w in range(THREADS)],
            )
        ours = [c for c in recorder.changes if c.id != main.id]
        check_stream(ours, range(THREADS), LIFECYCLES_PER_THREAD, root_parent=main.id)

    def test_handler_emits_in_many_threads_are_each_delivered_once(self):
        """A handler that emits for every leaf, under many threads, delivers each echo once."""
        recorder = RecordingHandler()

        def echoes(change):
            if isinstance(change, Created) and change.event.role == "leaf":
                Work(worker=change.event.worker, n=change.event.n, role="echo").emit()

        bus = EventBus([recorder, echoes])
        barrier = threading.Barrier(THREADS)
        run_threads(bus.run, [(thread_work, w, 200, barrier) for w in range(THREADS)])
        echo_changes = [
            c for c in recorder.changes if isinstance(c, Created) and c.event.role == "echo"
        ]
        assert {(w, n) for w in range(THREADS) for n in range(200)} == {
            (c.event.worker, c.event.n) for c in echo_changes
        }
        assert THREADS * 200 == len(echo_changes)
        echo_ids = {c.id for c in echo_changes}
        check_stream([c for c in recorder.changes if c.id not in echo_ids], range(THREADS), 200)
        scopes = {
            c.id: (c.event.worker, c.event.n)
            for c in recorder.changes
            if isinstance(c, Created) and c.event.role == "scope"
        }
        assert {(c.event.worker, c.event.n) for c in echo_changes} == {
            scopes[c.parent_id] for c in echo_changes
        }


# -- asyncio tasks ---------------------------------------------------------------------------


class TestAsyncTasks:
    def test_tasks_sharing_one_bus_get_every_change_exactly_once(self):
        """500 interleaving tasks on one bus: each change once, seq in order, no crossed parents."""
        recorder = RecordingHandler()

        async def main():
            async with EventBus([recorder]), Work(worker=-1, n=-1, role="main").in_scope() as h:
                await asyncio.gather(*(task_work(w, LIFECYCLES_PER_TASK) for w in range(TASKS)))
            return h

        main_handle = asyncio.run(main())
        ours = [c for c in recorder.changes if c.id != main_handle.id]
        check_stream(ours, range(TASKS), LIFECYCLES_PER_TASK, root_parent=main_handle.id)
        assert worker_switches(ours) > TASKS  # the tasks did interleave

    def test_tasks_sharing_a_bus_with_an_async_handler(self):
        """Tasks on a bus whose async handler yields mid-delivery still get each change once."""
        recorder, async_recorder = RecordingHandler(), AsyncRecorder()

        async def main():
            async with EventBus([async_recorder, recorder]):
                await asyncio.gather(*(task_work(w, LIFECYCLES_PER_TASK) for w in range(TASKS)))

        asyncio.run(main())
        check_stream(recorder.changes, range(TASKS), LIFECYCLES_PER_TASK)
        check_stream(async_recorder.changes, range(TASKS), LIFECYCLES_PER_TASK)

    def test_tasks_on_separate_buses_each_get_only_their_own_changes(self):
        """500 tasks each on its own bus: every bus gets exactly its own task's changes."""
        recorders = [RecordingHandler() for _ in range(TASKS)]

        async def on_own_bus(worker):
            async with EventBus([recorders[worker]]):
                await task_work(worker, LIFECYCLES_PER_TASK)

        async def main():
            await asyncio.gather(*(on_own_bus(w) for w in range(TASKS)))

        asyncio.run(main())
        for worker, recorder in enumerate(recorders):
            check_stream(recorder.changes, [worker], LIFECYCLES_PER_TASK)

    def test_tasks_in_many_threads_on_one_bus(self):
        """Threads each running their own event loop of tasks on one bus never cross parents."""
        recorder = RecordingHandler()
        bus = EventBus([recorder])
        per_thread = 50

        def thread_loop(thread_index):
            async def main():
                async with bus:
                    await asyncio.gather(
                        *(
                            task_work(thread_index * per_thread + t, LIFECYCLES_PER_TASK)
                            for t in range(per_thread)
                        )
                    )

            asyncio.run(main())

        run_threads(thread_loop, [(i,) for i in range(THREADS)])
        check_stream(recorder.changes, range(THREADS * per_thread), LIFECYCLES_PER_TASK)


# -- properties: nesting trees reconstruct from parent ids ----------------------------------

trees = st.recursive(
    st.just(()),
    lambda children: st.lists(children, max_size=4).map(tuple),
    max_leaves=25,
)


def expected_parents(tree, path="r"):
    """Map each node's path to its parent's path (None for the root)."""
    found = {path: None}

    def walk(node, node_path):
        for index, child in enumerate(node):
            child_path = f"{node_path}.{index}"
            found[child_path] = node_path
            walk(child, child_path)

    walk(tree, path)
    return found


def actual_parents(changes):
    """Map each created node's path to its parent's path, from the parent ids."""
    paths = {c.id: c.event.path for c in changes if isinstance(c, Created)}
    assert len(paths) == len([c for c in changes if isinstance(c, Created)])
    return {
        c.event.path: (None if c.parent_id is None else paths[c.parent_id])
        for c in changes
        if isinstance(c, Created)
    }


def build(node, path):
    with Node(path=path).in_scope():
        for index, child in enumerate(node):
            build(child, f"{path}.{index}")


async def abuild(node, path):
    async with Node(path=path).in_scope():
        await asyncio.sleep(0)
        await asyncio.gather(*(abuild(child, f"{path}.{i}") for i, child in enumerate(node)))
        await asyncio.sleep(0)


def thread_build(node, path):
    with Node(path=path).in_scope():
        threads = [
            threading.Thread(target=carry_context(build), args=(child, f"{path}.{index}"))
            for index, child in enumerate(node)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class TestNestingProperties:
    @settings(max_examples=80, deadline=None)
    @given(tree=trees)
    def test_nested_scopes_reconstruct_their_tree(self, tree):
        """Any tree of nested in_scope calls is rebuilt exactly from the Created parent ids."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            build(tree, "r")
        assert expected_parents(tree) == actual_parents(recorder.changes)
        assert {1} == set(Counter((c.id, c.seq) for c in recorder.changes).values())

    @settings(max_examples=60, deadline=None)
    @given(tree=trees)
    def test_scopes_in_concurrent_tasks_reconstruct_their_tree(self, tree):
        """Any tree whose children run as concurrent tasks is rebuilt exactly from the parent ids."""
        recorder = RecordingHandler()

        async def main():
            async with EventBus([recorder]):
                await abuild(tree, "r")

        asyncio.run(main())
        assert expected_parents(tree) == actual_parents(recorder.changes)
        assert {1} == set(Counter((c.id, c.seq) for c in recorder.changes).values())

    @settings(max_examples=40, deadline=None)
    @given(tree=trees)
    def test_scopes_in_carried_threads_reconstruct_their_tree(self, tree):
        """Any tree whose root's children run in carry_context threads is rebuilt exactly."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            thread_build(tree, "r")
        assert expected_parents(tree) == actual_parents(recorder.changes)
        final = [c for c in recorder.changes if isinstance(c, StateChanged)]
        assert {EventState.SUCCESS} >= {c.new_state for c in final}
        assert len(expected_parents(tree)) == len(final)
