"""
Durable execution (design ``durable-execution.md`` §5 R1, R4-R9, R14).

Derived ids (``DerivedIds``), caller ids and keys, injected clocks, ``EventBus.scoped``,
replay gating (``is_replaying``, ``ReplayPolicy``), hand-over with ``EventHandle.attach`` and
``epoch``, ``epoch`` on the wire, and JSON-lines files folded by ``EventTree``.

Everything runs for real: fresh interpreters (``sys.executable``), real threads and asyncio
tasks interleaved in orders that hypothesis picks, real files. Times come from fake clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rust_test_events import TestBuildImage, TestBuildingStack
from wire_samples import EXAMPLES

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventHandle,
    EventState,
    EventValidationError,
    StateChanged,
    UnknownEvent,
    Updated,
    carry_context,
    event_type,
)
from alien_events_jsonl import JsonLinesHandler, read_changes
from alien_events_sdk import (
    ID_SCHEME_VERSION,
    DerivedIds,
    EventBus,
    EventTree,
    RecordingHandler,
    ReplayPolicy,
    WireFormatError,
    dump_change_line,
    dumps,
    from_dict,
    json_schema,
    loads,
    to_dict,
)

NONE, STARTED, SUCCESS, FAILED = (
    EventState.NONE,
    EventState.STARTED,
    EventState.SUCCESS,
    EventState.FAILED,
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOOM = AlienError(code="BOOM", message="it broke")
PROPERTY = settings(max_examples=60, deadline=None)


@event_type(tag="durable-test.Work")
class Work(Event):
    """One step of a branch of a durable program."""

    branch: int
    step: int


@event_type(tag="durable-test.Progress")
class Progress(Event):
    """Progress of a long step, reported by whoever owns it."""

    owner: str
    percent: int


WORK = "durable-test.Work"


# -- helpers ------------------------------------------------------------------------------------


class FakeClock:
    """A clock that moves ``step`` per reading, starting after ``start``."""

    def __init__(self, start=T0, step=timedelta(milliseconds=1)):
        self.now = start
        self.step = step
        self.readings = []

    def __call__(self):
        self.now += self.step
        self.readings.append(self.now)
        return self.now


def created_changes(changes):
    return [c for c in changes if isinstance(c, Created)]


def triples(changes):
    """The (id, parent_id, event) of every Created change, as a set."""
    return {(c.id, c.parent_id, c.event) for c in created_changes(changes)}


def versions(changes):
    """The (kind, id, epoch, seq) of every change, as a set."""
    return {(type(c).__name__, c.id, c.epoch, c.seq) for c in changes}


def chaotic(data, changes):
    """Draw a random delivery: the changes plus random duplicates, in a random order."""
    duplicates = data.draw(st.lists(st.sampled_from(changes), max_size=len(changes)))
    return data.draw(st.permutations([*changes, *duplicates]))


def is_uuid(text):
    try:
        return str(uuid.UUID(text)) == text
    except (TypeError, ValueError):
        return False


def run_python(code, *args, env=None):
    """Run ``code`` in a fresh interpreter (this venv's); return its stdout, failing loudly."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert 0 == done.returncode, done.stderr
    return done.stdout


# -- R1: ids derived from the scope key ---------------------------------------------------------

# A workflow body run in a fresh interpreter: nested scopes, same-type siblings, a caller key,
# a caller id, and a child under a caller-supplied parent. Prints the Created (id, parent) list.
WORKFLOW = textwrap.dedent(
    """
    import json, sys
    from alien_events_api import AlienEvent, EventState
    from alien_events_sdk import DerivedIds, EventBus, RecordingHandler

    recorder = RecordingHandler()
    bus = EventBus([recorder], ids=DerivedIds(sys.argv[1]))
    with bus:
        with AlienEvent.BuildingStack(stack="app").in_scope() as stack:
            for image in ("api", "web", "worker"):
                with AlienEvent.BuildingImage(image=image).in_scope() as build:
                    push = AlienEvent.PushingImage(image=image).emit(EventState.STARTED)
                    push.complete()
                    build.update(AlienEvent.BuildingImage(image=image + "!"))
            AlienEvent.Finished().emit(key="stack-done")
            AlienEvent.Finished().emit(id="business-key-42")
            AlienEvent.Finished().emit()
        AlienEvent.Finished().emit(parent="attached-parent")
    print(json.dumps([[c.id, c.parent_id] for c in recorder.changes if c.seq == 0]))
    """
)


class TestDerivedIdsAcrossProcesses:
    def test_same_program_and_scope_key_give_the_same_ids_in_fresh_processes(self):
        """The same program with the same scope key makes the identical id list in two new interpreters."""
        first = json.loads(run_python(WORKFLOW, "wf/run-1", env={"PYTHONHASHSEED": "1"}))
        second = json.loads(run_python(WORKFLOW, "wf/run-1", env={"PYTHONHASHSEED": "2"}))

        assert first == second
        assert 11 == len(first)
        assert all(is_uuid(event_id) for event_id, _ in first if event_id != "business-key-42")
        assert len({event_id for event_id, _ in first}) == len(first)

    def test_a_different_scope_key_gives_disjoint_ids(self):
        """The same program under another scope key shares no derived id with the first."""
        first = json.loads(run_python(WORKFLOW, "wf/run-1"))
        other = json.loads(run_python(WORKFLOW, "wf/run-2"))

        derived = {event_id for event_id, _ in first} - {"business-key-42"}
        derived_other = {event_id for event_id, _ in other} - {"business-key-42"}
        assert len(derived) == len(derived_other) == 10
        assert set() == derived & derived_other

    def test_ids_made_in_this_process_match_the_fresh_processes(self):
        """Running the workflow here gives the list a fresh interpreter gives (no hidden process state)."""
        here = []

        def capture(text):
            here.extend(json.loads(text))

        code = WORKFLOW.replace("sys.argv[1]", repr("wf/run-1")).replace("print(", "capture(")
        exec(code, {"capture": capture})  # noqa: S102  (our own program text)

        assert json.loads(run_python(WORKFLOW, "wf/run-1")) == here

    @given(
        scope_keys=st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=2, unique=True),
        program=st.lists(st.sampled_from(["a", "b", None]), min_size=1, max_size=8),
    )
    @PROPERTY
    def test_two_scope_keys_under_one_attached_parent_never_collide(self, scope_keys, program):
        """Two processes (scope keys) adding the same children under one attached parent make disjoint ids."""
        made = []
        for scope_key in scope_keys:
            recorder = RecordingHandler()
            with EventBus([recorder], ids=DerivedIds(scope_key)):
                parent = EventHandle.attach("shared-parent")
                with parent.as_parent():
                    for step, key in enumerate(program):
                        with Work(branch=0, step=step).in_scope(key=key):
                            Work(branch=1, step=step).emit()
            made.append({c.id for c in created_changes(recorder.changes)})
            assert {"shared-parent"} <= {c.parent_id for c in created_changes(recorder.changes)}

        assert set() == made[0] & made[1]
        assert len(made[0]) == len(made[1]) == 2 * len(program)


# A branch program: for each step, which earlier node of the branch is the parent (modulo), and
# whether the step is a scope (with one child inside) rather than a plain emit.
BRANCH = st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=7)


def sync_branch(branch, program, turn):
    """Run one branch: its own parent (caller key), then the program's steps, each in a turn."""
    with turn(branch):
        root = Work(branch=branch, step=-1).emit(STARTED, key=f"branch-{branch}")
    nodes = [root]
    for step, (pick, scoped) in enumerate(program):
        with turn(branch):
            parent = nodes[pick % len(nodes)]
            if scoped:
                with (
                    parent.as_parent(),
                    Work(branch=branch, step=step).in_scope() as handle,
                ):
                    nodes.append(handle)
                    nodes.append(Work(branch=branch, step=100 + step).emit())
            else:
                nodes.append(Work(branch=branch, step=step).emit(parent=parent))
    with turn(branch):
        root.complete()


async def async_branch(branch, program, pauses):
    """Async twin of ``sync_branch``: ``pauses[i]`` yields to the loop that often after step i."""
    root = await Work(branch=branch, step=-1).aemit(STARTED, key=f"branch-{branch}")
    nodes = [root]
    for step, (pick, scoped) in enumerate(program):
        parent = nodes[pick % len(nodes)]
        if scoped:
            with parent.as_parent():
                async with Work(branch=branch, step=step).in_scope() as handle:
                    nodes.append(handle)
                    for _ in range(pauses[step % len(pauses)]):
                        await asyncio.sleep(0)
                    nodes.append(await Work(branch=branch, step=100 + step).aemit())
        else:
            nodes.append(await Work(branch=branch, step=step).aemit(parent=parent))
        for _ in range(pauses[(step + 1) % len(pauses)]):
            await asyncio.sleep(0)
    await root.acomplete()


@contextlib.contextmanager
def any_turn(branch):
    yield


class Turns:
    """Makes threads take their steps in the order of a schedule (a list of branch numbers)."""

    def __init__(self, schedule):
        self._schedule = schedule
        self._position = 0
        self._aborted = False
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def turn(self, branch):
        with self._condition:
            # The timeout only guards against a hang if a branch died; it is never reached.
            self._condition.wait_for(
                lambda: self._aborted or self._schedule[self._position] == branch, timeout=30
            )
            assert not self._aborted
            assert self._schedule[self._position] == branch
        try:
            yield
        except BaseException:
            self._aborted = True
            raise
        finally:
            with self._condition:
                self._position += 1
                self._condition.notify_all()


def branch_steps(program):
    return len(program) + 2  # the branch's parent, its steps, its completion


def run_sequentially(programs):
    recorder = RecordingHandler()
    with EventBus([recorder], ids=DerivedIds("wf/concurrent")), Work(branch=9, step=9).in_scope():
        for branch, program in enumerate(programs):
            sync_branch(branch, program, any_turn)
    return recorder.changes


def run_in_threads(programs, turn, *, barrier=None):
    """
    Run each branch in a thread of its own carrying one scope, as ``run_sequentially`` does in turn.

    ``turn`` is what each step waits for; with ``barrier``, the threads start together.
    Returns the changes and what the threads raised.
    """
    recorder = RecordingHandler()
    errors = []

    def work(branch):
        try:
            if barrier is not None:
                barrier.wait()
            sync_branch(branch, programs[branch], turn)
        except BaseException as exc:
            errors.append(exc)

    with EventBus([recorder], ids=DerivedIds("wf/concurrent")), Work(branch=9, step=9).in_scope():
        threads = [
            threading.Thread(target=carry_context(work), args=(branch,))
            for branch in range(len(programs))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return recorder.changes, errors


class TestDerivedIdsUnderConcurrency:
    @given(programs=st.lists(BRANCH, min_size=2, max_size=2), data=st.data())
    @settings(max_examples=40, deadline=None)
    def test_threads_in_any_interleaving_make_the_sequential_ids(self, programs, data):
        """Two threads, each under its own parent, make the ids, parents and events of a sequential run."""
        schedule = data.draw(
            st.permutations(
                [b for b, program in enumerate(programs) for _ in range(branch_steps(program))]
            )
        )
        changes, errors = run_in_threads(programs, Turns(schedule).turn)

        assert [] == errors
        sequential = run_sequentially(programs)
        assert triples(sequential) == triples(changes)
        assert versions(sequential) == versions(changes)

    def test_free_running_threads_sharing_one_factory_make_the_sequential_ids(self):
        """Eight unsynchronised threads hammering one DerivedIds, each under its own parent, lose no count."""
        programs = [[(n % 5, n % 4 == 0) for n in range(60)] for _ in range(8)]
        changes, errors = run_in_threads(
            programs, any_turn, barrier=threading.Barrier(len(programs))
        )

        assert [] == errors
        sequential = run_sequentially(programs)
        assert triples(sequential) == triples(changes)
        assert versions(sequential) == versions(changes)
        assert len(sequential) == len(changes)

    @given(
        programs=st.lists(BRANCH, min_size=2, max_size=2),
        pauses=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=8), min_size=2),
    )
    @PROPERTY
    def test_asyncio_tasks_in_any_interleaving_make_the_sequential_ids(self, programs, pauses):
        """Two asyncio tasks yielding at random points make the ids, parents and events of a sequential run."""
        recorder = RecordingHandler()

        async def main():
            async with Work(branch=9, step=9).in_scope():
                await asyncio.gather(
                    *(async_branch(b, program, pauses[b]) for b, program in enumerate(programs))
                )

        bus = EventBus([recorder], ids=DerivedIds("wf/concurrent"))
        asyncio.run(bus.run(main))

        sequential = run_sequentially(programs)
        assert triples(sequential) == triples(recorder.changes)
        assert versions(sequential) == versions(recorder.changes)


class TestDerivedIdScheme:
    def test_id_for_predicts_a_root(self):
        """A root's id is id_for(None, its tag, 0)."""
        ids = DerivedIds("wf/1")
        recorder = RecordingHandler()
        with EventBus([recorder], ids=DerivedIds("wf/1")):
            handle = Work(branch=0, step=0).emit()

        assert ids.id_for(None, WORK, 0) == handle.id == recorder.changes[0].id

    def test_id_for_predicts_nested_events(self):
        """A child's id is id_for(parent id, its tag, 0), level after level."""
        ids = DerivedIds("wf/1")
        with (
            EventBus(ids=DerivedIds("wf/1")),
            TestBuildingStack(stack="s").in_scope() as stack,
            TestBuildImage(image="i", stage="a").in_scope() as build,
        ):
            leaf = Work(branch=0, step=0).emit()

        assert ids.id_for(None, "TestBuildingStack") == stack.id
        assert ids.id_for(stack.id, "TestBuildImage") == build.id
        assert ids.id_for(build.id, WORK) == leaf.id
        assert build.id == leaf.parent_id

    def test_id_for_predicts_the_nth_sibling(self):
        """The n-th sibling with the same tag under one parent gets occurrence n (0 first)."""
        ids = DerivedIds("wf/1")
        with EventBus(ids=DerivedIds("wf/1")):
            siblings = [Work(branch=0, step=n).emit(parent="p") for n in range(4)]

        assert [ids.id_for("p", WORK, n) for n in range(4)] == [h.id for h in siblings]
        assert 4 == len({h.id for h in siblings})

    def test_id_for_predicts_caller_keys(self):
        """An event given key= gets id_for(parent, key, n), n counting earlier siblings with that key."""
        ids = DerivedIds("wf/1")
        with EventBus(ids=DerivedIds("wf/1")):
            first = Work(branch=0, step=0).emit(parent="p", key="charge-card")
            second = TestBuildImage(image="i", stage="s").emit(parent="p", key="charge-card")
            scoped = asyncio.run(Work(branch=0, step=1).aemit(parent="p", key="refund"))
            with Work(branch=0, step=2).in_scope(key="ship") as shipped:
                pass

        assert ids.id_for("p", "charge-card", 0) == first.id
        assert ids.id_for("p", "charge-card", 1) == second.id
        assert ids.id_for("p", "refund", 0) == scoped.id
        assert ids.id_for(None, "ship", 0) == shipped.id

    def test_the_factory_call_counts_per_parent_and_key(self):
        """DerivedIds(parent, event[, key]) numbers each (parent, key) pair on its own."""
        ids = DerivedIds("wf/1")
        event = Work(branch=0, step=0)
        made = [
            ids("p", event),
            ids("q", event),
            ids("p", event),
            ids("p", event, "k"),
            ids(None, event),
            ids("p", event, "k"),
        ]

        assert [
            ids.id_for("p", WORK, 0),
            ids.id_for("q", WORK, 0),
            ids.id_for("p", WORK, 1),
            ids.id_for("p", "k", 0),
            ids.id_for(None, WORK, 0),
            ids.id_for("p", "k", 1),
        ] == made

    def test_id_for_is_pure(self):
        """id_for gives the same answer every time and moves no counter."""
        ids = DerivedIds("wf/1")
        predicted = [ids.id_for("p", WORK, 0) for _ in range(3)]
        made = ids("p", Work(branch=0, step=0))

        assert [made] * 3 == predicted
        assert ids.id_for("p", WORK) == ids.id_for("p", WORK, 0)
        assert ids.id_for("p", WORK, 1) == ids("p", Work(branch=0, step=0))

    def test_unknown_events_are_keyed_by_their_tag(self):
        """An UnknownEvent (read from the wire) is keyed by its tag, like the typed event it stands for."""
        ids = DerivedIds("wf/1")
        unknown = UnknownEvent(tag="SomeoneElses.Event", data={"x": 1})

        assert ids.id_for("p", "SomeoneElses.Event", 0) == ids("p", unknown)

    @given(
        scope_key=st.text(min_size=1),
        parent=st.one_of(st.none(), st.text()),
        key=st.text(min_size=1),
        occurrence=st.integers(0, 10**6),
    )
    @PROPERTY
    def test_ids_are_uuid5_strings(self, scope_key, parent, key, occurrence):
        """Every derived id is the canonical text of a version-5 UUID."""
        made = DerivedIds(scope_key).id_for(parent, key, occurrence)

        assert is_uuid(made)
        assert 5 == uuid.UUID(made).version

    def test_id_parts_do_not_run_into_each_other(self):
        """Scope, parent and key are kept apart: moving characters between them changes the id."""
        made = {
            DerivedIds("a").id_for("bc", "d"),
            DerivedIds("ab").id_for("c", "d"),
            DerivedIds("a").id_for("b", "cd"),
            DerivedIds("a").id_for(None, "bcd"),
            DerivedIds("a").id_for("None", "bcd"),
            DerivedIds("a").id_for("b", "c", 1),
            DerivedIds("a").id_for("b", "c#1", 0),
        }

        assert 7 == len(made)

    def test_a_key_changes_only_that_events_id_and_frees_its_occurrence(self):
        """key= on one sibling changes its id; other keys and earlier siblings keep theirs, later same-tag ones move up."""
        ids = DerivedIds("wf/1")

        def run(key):
            with EventBus(ids=DerivedIds("wf/1")):
                return [
                    Work(branch=0, step=0).emit(parent="p").id,
                    TestBuildingStack(stack="s").emit(parent="p").id,
                    Work(branch=0, step=1).emit(parent="p", key=key).id,
                    Work(branch=0, step=2).emit(parent="p").id,
                ]

        plain, keyed = run(None), run("special")

        assert plain[:2] == keyed[:2]
        assert ids.id_for("p", WORK, 1) == plain[2]
        assert ids.id_for("p", "special", 0) == keyed[2]
        assert ids.id_for("p", WORK, 2) == plain[3]
        assert ids.id_for("p", WORK, 1) == keyed[3]  # the keyed sibling left the tag's count

    def test_another_tag_added_among_siblings_renumbers_nothing(self):
        """Adding an event of another type among siblings leaves every existing sibling's id (R14)."""

        def run(extra):
            with EventBus(ids=DerivedIds("wf/1")):
                made = []
                for step in range(3):
                    if extra:
                        TestBuildingStack(stack=str(step)).emit(parent="p")
                    made.append(Work(branch=0, step=step).emit(parent="p").id)
                return made

        assert run(extra=False) == run(extra=True)

    def test_a_caller_id_is_used_as_is_and_moves_no_counter(self):
        """emit(id=...) gives that id exactly, and the next derived sibling still gets occurrence 0."""
        ids = DerivedIds("wf/1")
        recorder = RecordingHandler()
        with EventBus([recorder], ids=DerivedIds("wf/1")):
            business = Work(branch=0, step=0).emit(parent="p", id="order-17 / ünïcode")
            derived = Work(branch=0, step=1).emit(parent="p")
            with Work(branch=0, step=2).in_scope(id="scope-id") as scoped:
                inner = Work(branch=0, step=3).emit()
            asynced = asyncio.run(Work(branch=0, step=4).aemit(parent="p", id="async-id"))
            after = Work(branch=0, step=5).emit(parent="p")

        assert "order-17 / ünïcode" == business.id == recorder.changes[0].id
        assert ids.id_for("p", WORK, 0) == derived.id
        assert "scope-id" == scoped.id
        assert ids.id_for("scope-id", WORK, 0) == inner.id
        assert "async-id" == asynced.id
        assert ids.id_for("p", WORK, 1) == after.id

    def test_a_caller_id_works_without_derived_ids(self):
        """On a bus with random ids, emit(id=...) still gives that id, and key= is accepted."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            business = Work(branch=0, step=0).emit(id="order-18")
            keyed = Work(branch=0, step=1).emit(key="k")

        assert "order-18" == business.id
        assert is_uuid(keyed.id)
        assert ["order-18", keyed.id] == [c.id for c in recorder.changes]

    @pytest.mark.parametrize(
        "call",
        [
            lambda: Work(branch=0, step=0).emit(id="x", key="y"),
            lambda: asyncio.run(Work(branch=0, step=0).aemit(id="x", key="y")),
            lambda: Work(branch=0, step=0).in_scope(id="x", key="y"),
        ],
        ids=["emit", "aemit", "in_scope"],
    )
    def test_id_and_key_together_are_refused(self, call):
        """Giving both id= and key= is a TypeError that says to pick one, on emit, aemit and in_scope."""
        recorder = RecordingHandler()
        with EventBus([recorder], ids=DerivedIds("wf/1")), pytest.raises(TypeError) as caught:
            call()

        assert "either an id or a key, not both" in str(caught.value)
        assert [] == recorder.changes

    @pytest.mark.parametrize("name", ["id", "key"])
    @pytest.mark.parametrize("value", ["", 7, b"k"], ids=["empty", "int", "bytes"])
    @pytest.mark.parametrize("how", ["emit", "aemit", "in_scope", "no-bus"])
    def test_empty_or_non_str_ids_and_keys_are_refused(self, name, value, how):
        """An empty or non-str id= or key= is a TypeError naming it, with or without a bus."""
        work = Work(branch=0, step=0)
        kwargs = {name: value}
        calls = {
            "emit": lambda: work.emit(**kwargs),
            "aemit": lambda: asyncio.run(work.aemit(**kwargs)),
            "in_scope": lambda: work.in_scope(**kwargs),
            "no-bus": lambda: work.emit(**kwargs),
        }
        recorder = RecordingHandler()
        bus = EventBus([recorder], ids=DerivedIds("wf/1"))
        context = contextlib.nullcontext() if how == "no-bus" else bus
        with context, pytest.raises(TypeError, match=f"^{name} must be a non-empty str"):
            calls[how]()

        assert [] == recorder.changes

    @pytest.mark.parametrize("scope_key", ["", None, 5, b"wf"])
    def test_a_scope_key_must_be_a_non_empty_str(self, scope_key):
        """DerivedIds refuses an empty or non-str scope key with a TypeError naming it."""
        with pytest.raises(TypeError, match="scope_key must be a non-empty str"):
            DerivedIds(scope_key)

    def test_the_scope_key_and_repr(self):
        """A DerivedIds says its scope key, and its repr shows it."""
        ids = DerivedIds("temporal/default/wf-42/run-1")

        assert "temporal/default/wf-42/run-1" == ids.scope_key
        assert "DerivedIds('temporal/default/wf-42/run-1')" == repr(ids)

    def test_a_factory_returning_no_str_is_an_error(self):
        """An ids factory that returns an empty or non-str id makes emit raise a TypeError saying so."""
        for bad in ("", None, 7):
            with (
                EventBus(ids=lambda parent, event, bad=bad: bad),
                pytest.raises(TypeError, match="ids factory returned"),
            ):
                Work(branch=0, step=0).emit()

    def test_a_factory_without_a_key_parameter_is_named_when_a_key_is_given(self):
        """emit(key=...) on a bus whose ids factory takes two arguments says how to fix it."""

        def two(parent_id, event):
            return f"{parent_id}/{type(event).__name__}"

        with EventBus(ids=two):
            assert "None/Work" == Work(branch=0, step=0).emit().id
            with pytest.raises(TypeError, match=r"emit\(key='first'\) needs an ids factory"):
                Work(branch=0, step=0).emit(key="first")

    def test_a_type_error_inside_a_keyed_factory_is_not_disguised(self):
        """A factory that takes a key and raises TypeError itself keeps its own error."""

        def broken(parent_id, event, key):
            raise TypeError("broken factory")

        with EventBus(ids=broken), pytest.raises(TypeError, match=r"^broken factory$"):
            Work(branch=0, step=0).emit(key="k")

    def test_the_scheme_is_pinned(self):
        """
        Scheme version 1 maps one fixed (scope, parent, key, n) to one hard-coded id (R14).

        The expected ids were computed once, with the scheme as released, and must never change
        while ``ID_SCHEME_VERSION`` is 1: in-flight executions re-derive their ids after an
        upgrade, and any other answer makes phantom events. A new derivation needs a new
        scheme version (and a new namespace), never an edit of these constants.
        """
        ids = DerivedIds("pinned/scope-v1")

        assert 1 == ID_SCHEME_VERSION
        assert "b2cfca1b-de79-5493-a86c-71e44d72a1b8" == ids.id_for("parent-1", "TestBuildImage", 2)
        assert "84ffe8b7-b23a-509c-8db3-192c94d4755c" == ids.id_for(None, "BuildingStack", 0)
        with EventBus(ids=DerivedIds("pinned/scope-v1")):
            made = [
                TestBuildImage(image="i", stage=str(n)).emit(parent="parent-1") for n in range(3)
            ]
            root = AlienEvent.BuildingStack(stack="s").emit()
        assert "b2cfca1b-de79-5493-a86c-71e44d72a1b8" == made[2].id
        assert "84ffe8b7-b23a-509c-8db3-192c94d4755c" == root.id


# -- R4: clocks ---------------------------------------------------------------------------------


class TestClock:
    def test_a_bus_takes_every_timestamp_from_its_clock(self):
        """Created, Updated and StateChanged carry the bus clock's readings, in order, sync and async."""
        clock = FakeClock()
        recorder = RecordingHandler()

        async def body():
            handle = await Work(branch=0, step=1).aemit(STARTED)
            await handle.aupdate(Work(branch=0, step=2))
            await handle.acomplete()

        with EventBus([recorder], clock=clock) as bus:
            handle = Work(branch=0, step=0).emit(STARTED)
            handle.update(Work(branch=0, step=1))
            handle.fail(BOOM)
            asyncio.run(bus.run(body))

        stamps = [
            c.created_at if isinstance(c, Created) else c.updated_at for c in recorder.changes
        ]
        assert clock.readings == stamps
        assert 6 == len(stamps)

    def test_a_scoped_bus_uses_its_own_clock_even_after_the_scope(self):
        """Events made in scoped(clock=...) take that clock's time, also for changes after the with ends."""
        outer_clock = FakeClock(T0)
        inner_clock = FakeClock(T0 + timedelta(days=365))
        recorder = RecordingHandler()
        bus = EventBus([recorder], clock=outer_clock)
        with bus.scoped(clock=inner_clock):
            handle = Work(branch=0, step=0).emit(STARTED)
        with bus:
            other = Work(branch=0, step=1).emit()
            handle.complete()

        assert [inner_clock.readings[0], outer_clock.readings[0], inner_clock.readings[1]] == [
            recorder.changes[0].created_at,
            recorder.changes[1].created_at,
            recorder.changes[2].updated_at,
        ]
        assert other.id == recorder.changes[1].id

    def test_a_clock_with_another_time_zone_is_converted(self):
        """An aware datetime in another zone is the same instant, stored in UTC."""
        zone = datetime(2026, 1, 1, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        recorder = RecordingHandler()
        with EventBus([recorder], clock=lambda: zone):
            Work(branch=0, step=0).emit()

        assert datetime(2026, 1, 1, 9, tzinfo=UTC) == recorder.changes[0].created_at

    @pytest.mark.parametrize("how", ["emit", "aemit", "update", "scoped"])
    def test_a_naive_datetime_from_the_clock_is_a_clear_error(self, how):
        """A clock returning a naive datetime makes the call raise an error naming clock() and 'naive'."""
        naive = datetime(2026, 1, 1)  # noqa: DTZ001  (naive on purpose)
        recorder = RecordingHandler()
        good = EventBus([recorder])
        bus = EventBus([recorder], clock=lambda: naive)
        handle = EventHandle("e1", bus=bus)
        calls = {
            "emit": lambda: bus.run(Work(branch=0, step=0).emit),
            "aemit": lambda: asyncio.run(bus.run(Work(branch=0, step=0).aemit)),
            "update": lambda: handle.update(Work(branch=0, step=0)),
            "scoped": lambda: good.scoped(clock=lambda: naive).run(Work(branch=0, step=0).emit),
        }
        with pytest.raises(EventValidationError) as caught:
            calls[how]()

        assert "clock()" in str(caught.value)
        assert "naive" in str(caught.value)
        assert isinstance(caught.value, TypeError)
        assert [] == recorder.changes

    def test_a_clock_returning_no_datetime_is_a_clear_error(self):
        """A clock returning a number makes emit raise an error naming clock() and the type."""
        with (
            EventBus(clock=lambda: 1_767_225_600),
            pytest.raises(
                EventValidationError, match=r"clock\(\).*expected an aware datetime, got int"
            ),
        ):
            Work(branch=0, step=0).emit()

    def test_from_env_and_from_plugins_buses_pass_ids_and_clock_to_scoped_buses(self):
        """A bus from from_env/from_plugins with ids and clock hands them to its scoped buses."""
        recorder = RecordingHandler()
        clock = FakeClock()
        env_bus = EventBus.from_env({}, ids=DerivedIds("wf/env"), clock=clock)
        env_bus.add_handler(recorder)
        plugin_bus = EventBus.from_plugins(["none"], ids=DerivedIds("wf/plugins"), clock=clock)
        plugin_bus.add_handler(recorder)

        with env_bus.scoped(epoch=2):
            first = Work(branch=0, step=0).emit()
        with plugin_bus.scoped(epoch=3):
            second = Work(branch=0, step=0).emit()

        assert DerivedIds("wf/env").id_for(None, WORK) == first.id
        assert DerivedIds("wf/plugins").id_for(None, WORK) == second.id
        assert clock.readings == [c.created_at for c in recorder.changes]
        assert [2, 3] == [c.epoch for c in recorder.changes]


# -- scoped buses -------------------------------------------------------------------------------


class TestScoped:
    def test_a_scoped_bus_shares_the_handlers(self):
        """add_handler on the bus or on a scoped bus (with or without a hook) is seen by all of them."""
        first, second, third = RecordingHandler(), RecordingHandler(), RecordingHandler()
        bus = EventBus([first])
        scoped = bus.scoped(ids=DerivedIds("wf/1"))
        gated = bus.scoped(is_replaying=lambda: False)
        scoped.add_handler(second)
        bus.add_handler(third)

        assert (first, second, third) == bus.handlers == scoped.handlers == gated.handlers
        with gated:
            Work(branch=0, step=0).emit()
        with bus:
            Work(branch=0, step=1).emit()
        assert 2 == len(first) == len(second) == len(third)

    def test_handles_keep_the_scoped_options_after_the_with_ends(self):
        """A handle made inside scoped(...) keeps its epoch, clock and delivery after the scope."""
        clock = FakeClock(T0 + timedelta(days=1))
        recorder = RecordingHandler()
        bus = EventBus([recorder])
        with bus.scoped(ids=DerivedIds("wf/1"), clock=clock, epoch=4):
            handle = Work(branch=0, step=0).emit(STARTED)
        handle.update(Work(branch=0, step=1))  # outside any bus: the handle's own bus
        with bus:
            handle.complete()

        assert DerivedIds("wf/1").id_for(None, WORK) == handle.id
        assert 4 == handle.epoch
        assert [(0, 4), (1, 4), (2, 4)] == [(c.seq, c.epoch) for c in recorder.changes]
        assert clock.readings == [recorder.changes[0].created_at] + [
            c.updated_at for c in recorder.changes[1:]
        ]

    def test_options_not_given_are_inherited(self):
        """scoped() keeps the bus's ids, clock, epoch and replay hook for each option it is not given."""
        clock = FakeClock()
        replaying = [True]
        recorder = RecordingHandler()
        bus = EventBus(
            [recorder],
            ids=DerivedIds("wf/1"),
            clock=clock,
            epoch=3,
            is_replaying=lambda: replaying[0],
        )
        with bus.scoped(epoch=5):
            silent = Work(branch=0, step=0).emit()
        replaying[0] = False
        with bus.scoped():
            kept = Work(branch=0, step=1).emit()
        with bus.scoped(ids=DerivedIds("wf/2")):
            other = Work(branch=0, step=2).emit()

        assert DerivedIds("wf/1").id_for(None, WORK, 0) == silent.id
        assert DerivedIds("wf/1").id_for(None, WORK, 1) == kept.id
        assert DerivedIds("wf/2").id_for(None, WORK, 0) == other.id
        assert [5, 3, 3] == [silent.epoch, kept.epoch, other.epoch]
        assert [kept.id, other.id] == [c.id for c in recorder.changes]
        assert [3, 3] == [c.epoch for c in recorder.changes]
        assert clock.readings[1:] == [c.created_at for c in recorder.changes]

    def test_scoped_buses_nest(self):
        """A scoped bus of a scoped bus inherits from its direct parent and overrides what it is given."""
        recorder = RecordingHandler()
        bus = EventBus([recorder], ids=DerivedIds("wf/1"))
        with bus.scoped(epoch=2).scoped(clock=FakeClock()):
            handle = Work(branch=0, step=0).emit()

        assert (DerivedIds("wf/1").id_for(None, WORK), 2) == (handle.id, handle.epoch)

    def test_the_scoped_bus_is_current_only_inside_its_with(self):
        """Inside `with bus.scoped(...)` emits go through it; after, the outer bus is current again."""
        bus = EventBus(ids=DerivedIds("outer"))
        with bus:
            with bus.scoped(ids=DerivedIds("inner")) as inner:
                assert EventBus.current() is inner
                first = Work(branch=0, step=0).emit()
            assert EventBus.current() is bus
            second = Work(branch=0, step=0).emit()

        assert DerivedIds("inner").id_for(None, WORK) == first.id
        assert DerivedIds("outer").id_for(None, WORK) == second.id

    @pytest.mark.parametrize(
        ("options", "error", "message"),
        [
            ({"ids": "wf/1"}, TypeError, "ids must be a callable"),
            ({"ids": 42}, TypeError, "ids must be a callable"),
            ({"clock": T0}, TypeError, "clock must be a callable"),
            ({"epoch": -1}, TypeError, "epoch must be an int >= 0, got -1"),
            ({"epoch": True}, TypeError, "epoch must be an int >= 0, got True"),
            ({"epoch": "1"}, TypeError, "epoch must be an int >= 0, got '1'"),
            ({"epoch": 1.0}, TypeError, "epoch must be an int >= 0, got 1.0"),
            ({"is_replaying": True}, TypeError, "is_replaying must be a callable"),
            (
                {"replay_policy": "sometimes"},
                ValueError,
                "replay_policy must be a ReplayPolicy ('skip_on_replay', 'deliver_always'), got 'sometimes'",
            ),
        ],
    )
    @pytest.mark.parametrize("where", ["EventBus", "scoped"])
    def test_bad_options_raise_clear_errors(self, options, error, message, where):
        """A bad ids, clock, epoch, hook or policy is refused by EventBus() and scoped() alike, saying why."""
        make = EventBus if where == "EventBus" else EventBus().scoped
        with pytest.raises(error) as caught:
            make(**options)

        assert message in str(caught.value)

    def test_a_bus_refuses_a_missing_policy_where_scoped_inherits_it(self):
        """EventBus(replay_policy=None) is refused naming the choices; scoped(replay_policy=None) inherits."""
        with pytest.raises(ValueError, match="'skip_on_replay', 'deliver_always'"):
            EventBus(replay_policy=None)
        recorder = RecordingHandler()
        bus = EventBus([recorder], is_replaying=lambda: True, replay_policy="deliver_always")
        bus.scoped(replay_policy=None).run(Work(branch=0, step=0).emit)

        assert 1 == len(recorder)

    def test_policies_are_accepted_as_enum_or_string(self):
        """ReplayPolicy members and their string values are both accepted, and mean the same."""
        delivered = []
        for policy in ("skip_on_replay", "deliver_always", *ReplayPolicy):
            recorder = RecordingHandler()
            EventBus([recorder], is_replaying=lambda: True, replay_policy=policy).run(
                Work(branch=0, step=0).emit
            )
            delivered.append(len(recorder))

        assert [0, 1, 0, 1] == delivered
        assert ["skip_on_replay", "deliver_always"] == [p.value for p in ReplayPolicy]


# -- R7: replay ---------------------------------------------------------------------------------


def workflow(checkpoint):
    """A workflow body; ``checkpoint()`` is called once, mid-way. Returns the handles it made."""
    handles = []
    with TestBuildingStack(stack="app").in_scope() as stack:
        handles.append(stack)
        build = TestBuildImage(image="api", stage="start").emit(STARTED)
        handles.append(build)
        build.update(TestBuildImage(image="api", stage="compile"))
        handles.append(Work(branch=0, step=0).emit(parent=build))
        checkpoint()
        build.update(TestBuildImage(image="api", stage="link"))
        handles.append(Work(branch=0, step=1).emit(parent=build, key="tests"))
        build.complete()
    return handles


async def aworkflow(checkpoint):
    """Async twin of ``workflow``: aemit, aupdate, acomplete and async scopes."""
    handles = []
    async with TestBuildingStack(stack="app").in_scope() as stack:
        handles.append(stack)
        build = await TestBuildImage(image="api", stage="start").aemit(STARTED)
        handles.append(build)
        await build.aupdate(TestBuildImage(image="api", stage="compile"))
        handles.append(await Work(branch=0, step=0).aemit(parent=build))
        checkpoint()
        await build.aupdate(TestBuildImage(image="api", stage="link"))
        handles.append(await Work(branch=0, step=1).aemit(parent=build, key="tests"))
        await build.acomplete()
    return handles


def run_workflow(mode, *, replay_until_checkpoint=True, policy=ReplayPolicy.SKIP_ON_REPLAY):
    """Run (a)workflow on a bus whose hook says "replaying" until the checkpoint; return handles, changes."""
    replaying = [replay_until_checkpoint]
    recorder = RecordingHandler()
    bus = EventBus(
        [recorder],
        ids=DerivedIds("wf/replay"),
        clock=FakeClock(),
        is_replaying=lambda: replaying[0],
        replay_policy=policy,
    )

    def checkpoint():
        replaying[0] = False

    if mode == "sync":
        handles = bus.run(workflow, checkpoint)
    else:
        handles = asyncio.run(bus.run(aworkflow, checkpoint))
    return handles, recorder.changes


def live_run(mode):
    return run_workflow(mode, replay_until_checkpoint=False)


@pytest.mark.parametrize("mode", ["sync", "async"])
class TestReplay:
    def test_a_full_replay_delivers_nothing_and_makes_the_same_handles(self, mode):
        """With is_replaying always true nothing is delivered, yet every handle's id and parent are the live run's."""
        replaying = [True]
        recorder = RecordingHandler()
        bus = EventBus([recorder], ids=DerivedIds("wf/replay"), is_replaying=lambda: replaying[0])

        def checkpoint():
            pass  # still replaying

        if mode == "sync":
            handles = bus.run(workflow, checkpoint)
        else:
            handles = asyncio.run(bus.run(aworkflow, checkpoint))

        live_handles, live_changes = live_run(mode)
        assert [] == recorder.changes
        assert [(h.id, h.parent_id) for h in live_handles] == [(h.id, h.parent_id) for h in handles]
        assert 8 == len(live_changes)

    def test_a_replayed_prefix_changes_no_later_id_or_seq(self, mode):
        """Replaying up to a point then running live delivers exactly the live run's later changes."""
        handles, changes = run_workflow(mode)
        live_handles, live_changes = live_run(mode)

        assert live_handles == handles
        assert live_changes[-len(changes) :] == changes
        assert [
            ("Updated", 2),
            ("Created", 0),
            ("StateChanged", 3),
            ("StateChanged", 1),
        ] == [(type(c).__name__, c.seq) for c in changes]

    def test_deliver_always_delivers_while_replaying(self, mode):
        """With the deliver_always policy a replay delivers every change, equal to the live run's."""
        handles, changes = run_workflow(mode, policy="deliver_always")
        live_handles, live_changes = live_run(mode)

        assert live_handles == handles
        assert live_changes == changes

    def test_a_scoped_hook_replaces_the_buses_hook(self, mode):
        """scoped(is_replaying=...) decides alone: a live scope of a replaying bus delivers, and the reverse."""
        recorder = RecordingHandler()
        replaying = EventBus([recorder], ids=DerivedIds("wf/replay"), is_replaying=lambda: True)
        live = EventBus([recorder], ids=DerivedIds("wf/replay"), is_replaying=lambda: False)

        def run(bus):
            if mode == "sync":
                return bus.run(workflow, lambda: None)
            return asyncio.run(bus.run(aworkflow, lambda: None))

        run(replaying.scoped(is_replaying=lambda: False))
        delivered = len(recorder)
        run(live.scoped(is_replaying=lambda: True))
        run(replaying)

        assert 8 == delivered == len(recorder)
        run(live)
        assert 16 == len(recorder)


class TestReplayGate:
    def test_the_hook_is_asked_for_every_change(self):
        """Delivery follows the hook change by change: a change made while it says False is delivered."""
        answers = iter([True, False, True, False])
        recorder = RecordingHandler()
        with EventBus([recorder], is_replaying=lambda: next(answers)):
            handle = Work(branch=0, step=0).emit(STARTED)
            handle.update(Work(branch=0, step=1))
            handle.update(Work(branch=0, step=2))
            handle.complete()

        assert [("Updated", 1), ("StateChanged", 3)] == [
            (type(c).__name__, c.seq) for c in recorder.changes
        ]

    def test_publish_is_gated_too(self):
        """publish and apublish deliver nothing while replaying, and deliver with deliver_always."""
        change = Created(id="e1", created_at=T0, event=Work(branch=0, step=0))
        skipped, delivered = RecordingHandler(), RecordingHandler()
        skipping = EventBus([skipped], is_replaying=lambda: True)
        always = EventBus([delivered], is_replaying=lambda: True, replay_policy="deliver_always")
        for bus in (skipping, always):
            bus.publish(change)
            asyncio.run(bus.apublish(change))

        assert [] == skipped.changes
        assert [change, change] == delivered.changes

    def test_no_hook_means_always_delivering(self):
        """A bus without is_replaying delivers whatever the policy says."""
        recorder = RecordingHandler()
        EventBus([recorder], replay_policy=ReplayPolicy.SKIP_ON_REPLAY).run(
            Work(branch=0, step=0).emit
        )

        assert 1 == len(recorder)

    def test_a_scoped_policy_alone_applies_to_the_inherited_hook(self):
        """scoped(replay_policy='deliver_always') on a replaying bus delivers (the option is not dropped)."""
        recorder = RecordingHandler()
        bus = EventBus([recorder], is_replaying=lambda: True)
        bus.scoped(replay_policy="deliver_always").run(Work(branch=0, step=0).emit)

        assert 1 == len(recorder)

    def test_a_scoped_hook_inherits_the_buses_policy(self):
        """scoped(is_replaying=...) on a deliver_always bus keeps delivering (the policy is inherited)."""
        recorder = RecordingHandler()
        bus = EventBus([recorder], is_replaying=lambda: True, replay_policy="deliver_always")
        bus.scoped(is_replaying=lambda: True).run(Work(branch=0, step=0).emit)

        assert 1 == len(recorder)


# -- R6/R8: attach and epoch ------------------------------------------------------------------


def creator_changes():
    """The creator (epoch 0): a started step with three progress updates; returns (id, changes)."""
    recorder = RecordingHandler()
    with EventBus([recorder], ids=DerivedIds("wf/owner"), clock=FakeClock(T0 + timedelta(hours=1))):
        handle = Progress(owner="creator", percent=0).emit(STARTED)
        for percent in (10, 20, 30):
            handle.update(Progress(owner="creator", percent=percent))
    return handle, recorder.changes


def take_over(event_id, epoch, owner, *, state=SUCCESS, clock_start=T0):
    """Another process attaches with ``epoch``, reports progress and sets a state."""
    recorder = RecordingHandler()
    with EventBus([recorder], clock=FakeClock(clock_start)):  # its clock is behind: skew
        handle = EventHandle.attach(event_id, epoch=epoch)
        handle.update(Progress(owner=owner, percent=50))
        if state is SUCCESS:
            handle.complete()
        else:
            handle.fail(BOOM)
    return handle, recorder.changes


class TestAttach:
    def test_attach_emits_nothing(self):
        """Attaching to an id sends no change, in or out of a bus."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            handle = EventHandle.attach("e1", "p1")
        EventHandle.attach("e2", bus=EventBus([recorder]))

        assert [] == recorder.changes
        assert ("e1", "p1", 1, False) == (handle.id, handle.parent_id, handle.epoch, handle.is_noop)

    def test_an_attached_handle_numbers_changes_from_its_epoch_and_next_seq(self):
        """An attached handle's changes carry its epoch and seq next_seq, next_seq + 1, ..."""
        recorder = RecordingHandler()
        default = EventHandle.attach("e1")
        later = EventHandle.attach("e2", epoch=3, next_seq=7)
        with EventBus([recorder]):
            default.update(Work(branch=0, step=0))
            default.complete()
            later.update(Work(branch=0, step=1))
            later.fail(BOOM)

        assert [("e1", 1, 1), ("e1", 1, 2), ("e2", 3, 7), ("e2", 3, 8)] == [
            (c.id, c.epoch, c.seq) for c in recorder.changes
        ]
        assert [(1, 1), (1, 2), (3, 7), (3, 8)] == [c.version for c in recorder.changes]

    def test_an_attached_handle_uses_the_bus_it_was_given(self):
        """attach(bus=...) sends to that bus even where another bus is current."""
        mine, other = RecordingHandler(), RecordingHandler()
        handle = EventHandle.attach("e1", bus=EventBus([mine]))
        with EventBus([other]):
            handle.complete()

        assert (1, 0) == (len(mine), len(other))

    def test_children_of_an_attached_handle_get_its_id_as_parent(self):
        """Children emitted under an attached handle (as_parent or parent=) have its id as parent and derived ids."""
        ids = DerivedIds("wf/child")
        recorder = RecordingHandler()
        with EventBus([recorder], ids=DerivedIds("wf/child")):
            handle = EventHandle.attach("created-elsewhere")
            with handle.as_parent():
                first = Work(branch=0, step=0).emit()
                with Work(branch=0, step=1).in_scope() as scoped:
                    grandchild = Work(branch=0, step=2).emit()
            second = Work(branch=0, step=3).emit(parent=handle)

        assert ["created-elsewhere"] * 3 == [first.parent_id, scoped.parent_id, second.parent_id]
        assert scoped.id == grandchild.parent_id
        assert [ids.id_for("created-elsewhere", WORK, n) for n in range(3)] == [
            first.id,
            scoped.id,
            second.id,
        ]
        assert "created-elsewhere" not in {c.id for c in recorder.changes}

    @pytest.mark.parametrize("name", ["epoch", "next_seq"])
    @pytest.mark.parametrize("value", [-1, True, "1", 1.5, None], ids=repr)
    def test_bad_epoch_or_next_seq_is_a_type_error(self, name, value):
        """attach refuses a negative, bool, str, float or None epoch/next_seq with a TypeError naming it."""
        with pytest.raises(TypeError, match=f"EventHandle.{name}: expected an int >= 0"):
            EventHandle.attach("e1", **{name: value})

    def test_a_bus_epoch_goes_on_every_change_of_its_handles(self):
        """EventBus(epoch=n) stamps n on Created, Updated and StateChanged, sync and async."""
        recorder = RecordingHandler()

        async def body():
            handle = await Work(branch=0, step=0).aemit()
            await handle.aupdate(Work(branch=0, step=1))
            await handle.afail(BOOM)

        bus = EventBus([recorder], epoch=2)
        with bus:
            handle = Work(branch=0, step=0).emit()
            handle.update(Work(branch=0, step=1))
            handle.complete()
        asyncio.run(bus.run(body))

        assert [2] * 6 == [c.epoch for c in recorder.changes]
        assert [0, 1, 2] * 2 == [c.seq for c in recorder.changes]


class TestEpochInTheTree:
    @given(data=st.data())
    @PROPERTY
    def test_the_later_owner_wins_in_every_delivery_order(self, data):
        """An epoch-1 owner's data and state beat the creator's updates and late failure, in any order."""
        handle, changes = creator_changes()
        _, taken = take_over(handle.id, 1, "taker")
        handle.fail(BOOM)  # the creator, unaware of the hand-over: a stale (0, 4)
        assert (FAILED, (0, 4)) == (changes[-1].new_state, changes[-1].version)
        all_changes = [*changes, *taken]

        tree = EventTree(chaotic(data, all_changes))

        node = tree.get(handle.id)
        assert (SUCCESS, None) == (node.state, node.error)
        assert Progress(owner="taker", percent=50) == node.event
        assert (1, 2) == node.version
        assert 2 == tree.next_epoch(handle.id)
        assert EventTree(all_changes) == tree

    @given(data=st.data())
    @PROPERTY
    def test_two_hand_overs_by_next_epoch_each_win(self, data):
        """Owners taking over with tree.next_epoch(id) in turn each beat every earlier owner, in any order."""
        handle, changes = creator_changes()
        tree = EventTree(changes)
        epoch_b = tree.next_epoch(handle.id)
        b, b_changes = take_over(handle.id, epoch_b, "b", state=FAILED)
        tree = EventTree([*changes, *b_changes])
        assert FAILED == tree.get(handle.id).state
        epoch_c = tree.next_epoch(handle.id)
        _, c_changes = take_over(handle.id, epoch_c, "c", clock_start=T0 - timedelta(days=1))
        stale = RecordingHandler()
        with EventBus([stale], clock=FakeClock(T0 + timedelta(days=1))):
            b.update(Progress(owner="b", percent=99))  # b, unaware of c: a stale (1, 3)
        assert [(1, 3)] == [c.version for c in stale.changes]
        b_changes = [*b_changes, *stale.changes]

        every = [*changes, *b_changes, *c_changes]
        folded = EventTree(chaotic(data, every))

        node = folded.get(handle.id)
        assert (1, 2) == (epoch_b, epoch_c)
        assert (SUCCESS, None) == (node.state, node.error)
        assert Progress(owner="c", percent=50) == node.event
        assert (2, 2) == node.version
        assert 3 == folded.next_epoch(handle.id)

    def test_a_stale_lower_epoch_change_arriving_late_is_ignored(self):
        """After epoch-1 changes, epoch-0 changes with higher seqs change no data, state or version."""
        handle, changes = creator_changes()
        _, taken = take_over(handle.id, 1, "taker")
        tree = EventTree([*changes, *taken])
        before = tree.get(handle.id).to_dict()

        stale = [
            Updated.unchecked(handle.id, 10**17, Progress(owner="creator", percent=100), 9, 0),
            StateChanged.unchecked(handle.id, 10**17, FAILED, BOOM, 10, 0),
        ]
        for change in stale:
            tree.apply(change)

        after = tree.get(handle.id).to_dict()
        # updated_at alone moves: it is the latest change seen, as in R5's GREATEST(updated_at).
        assert 10**17 == after.pop("updatedAt")
        before.pop("updatedAt")
        assert before == after
        assert (SUCCESS, (1, 2)) == (tree.get(handle.id).state, tree.get(handle.id).version)

    def test_next_epoch_of_an_unknown_event_is_one(self):
        """next_epoch is 1 for an event the tree has not seen (its creator used 0), then one above the highest."""
        tree = EventTree()
        assert 1 == tree.next_epoch("nobody")
        tree.apply(StateChanged.unchecked("e1", 0, SUCCESS, None, 3, 5))  # before its Created
        assert 6 == tree.next_epoch("e1")

    def test_an_attached_handle_with_the_creators_epoch_loses_to_later_seqs(self):
        """Attaching with epoch 0 and next_seq 1 (no hand-over) collides with the creator: versions decide."""
        handle, changes = creator_changes()
        _, taken = take_over(handle.id, 0, "same-epoch")  # (0, 1) and (0, 2): older than (0, 3)
        tree = EventTree([*changes, *taken])

        node = tree.get(handle.id)
        assert Progress(owner="creator", percent=30) == node.event
        assert SUCCESS == node.state  # the creator never sent a state above seq 0


# -- the wire -----------------------------------------------------------------------------------


def one_of_each(epoch):
    work = Work(branch=1, step=2)
    return [
        Created(id="e1", parent_id="p", created_at=T0, event=work, state=STARTED, epoch=epoch),
        Updated(id="e1", updated_at=T0, event=work, seq=4, epoch=epoch),
        StateChanged(id="e1", updated_at=T0, new_state=FAILED, error=BOOM, seq=5, epoch=epoch),
    ]


KINDS = ["created", "updated", "stateChanged"]


class TestEpochOnTheWire:
    @pytest.mark.parametrize("epoch", [1, 7, 2**40])
    @pytest.mark.parametrize("index", range(3), ids=KINDS)
    def test_epoch_round_trips(self, epoch, index):
        """A non-zero epoch is written last as "epoch" and read back, by dumps/loads and dump_change_line."""
        change = one_of_each(epoch)[index]

        text = dumps(change)
        line = dump_change_line(change)

        assert epoch == json.loads(text)["epoch"]
        assert "epoch" == list(json.loads(text))[-1]
        assert change == loads(text) == loads(line) == from_dict(to_dict(change))
        assert line.endswith(b"\n")
        assert epoch == loads(line).epoch

    @pytest.mark.parametrize("index", range(3), ids=KINDS)
    def test_epoch_zero_is_left_out(self, index):
        """Epoch 0 is not written, and a change without "epoch" reads back with epoch 0."""
        change = one_of_each(0)[index]

        assert "epoch" not in json.loads(dumps(change))
        assert b'"epoch"' not in dump_change_line(change)
        assert 0 == loads(dumps(change)).epoch

    def test_alien_golden_examples_stay_unchanged(self):
        """Alien's golden change examples carry no epoch and are written back without one."""
        changes = [ex for ex in EXAMPLES if ex["kind"] == "change"]

        assert len(changes) >= 5
        for example in changes:
            assert "epoch" not in example["json"]
            change = from_dict(example["json"])
            assert 0 == change.epoch
            assert "epoch" not in to_dict(change)
            assert set(example["json"]) == set(to_dict(change))

    def test_bus_changes_carry_epoch_only_when_raised(self):
        """Changes from a plain bus have no "epoch" on the wire; from an epoch-2 bus they have 2."""
        recorder = RecordingHandler()
        EventBus([recorder]).run(Work(branch=0, step=0).emit)
        EventBus([recorder], epoch=2).run(Work(branch=0, step=0).emit)

        assert [None, 2] == [json.loads(dumps(c)).get("epoch") for c in recorder.changes]

    @pytest.mark.parametrize("bad", [-1, True, False, "1", 1.5, None, [], {}], ids=repr)
    @pytest.mark.parametrize("index", range(3), ids=KINDS)
    def test_a_bad_epoch_is_a_wire_format_error_naming_it(self, bad, index):
        """An epoch that is negative, a bool, a string, a float, null or a container is refused, naming "epoch"."""
        data = to_dict(one_of_each(3)[index])
        data["epoch"] = bad

        with pytest.raises(WireFormatError) as caught:
            loads(json.dumps(data))

        assert "epoch" == caught.value.path
        assert "expected an integer >= 0" in str(caught.value)

    def test_our_schema_accepts_epochs_and_refuses_bad_ones(self):
        """json_schema() validates every kind of change with an epoch, and refuses a negative or string one."""
        validator = jsonschema.Draft202012Validator(json_schema())

        for change in [*one_of_each(0), *one_of_each(3)]:
            validator.validate(to_dict(change))
        for bad in (-1, "1", 1.5, True):
            data = to_dict(one_of_each(3)[1])
            data["epoch"] = bad
            assert not validator.is_valid(data), bad


# -- JSON-lines files from several processes ----------------------------------------------------


def several_processes():
    """The changes of three "processes" sharing one tree: creator, an activity, a finisher."""
    creator, activity, finisher = RecordingHandler(), RecordingHandler(), RecordingHandler()
    with EventBus([creator], ids=DerivedIds("wf/main"), clock=FakeClock()):
        root = TestBuildingStack(stack="app").emit(STARTED)
        with root.as_parent():
            call = TestBuildImage(image="api", stage="queued").emit(STARTED)
            TestBuildImage(image="web", stage="queued").emit(STARTED).complete()
        call.update(TestBuildImage(image="api", stage="scheduled"))
    with EventBus(
        [activity], ids=DerivedIds("wf/activity"), clock=FakeClock(T0 - timedelta(minutes=5))
    ):
        taken = EventHandle.attach(call.id, root.id, epoch=1)
        with taken.as_parent():
            with Work(branch=1, step=0).in_scope():
                Work(branch=1, step=1).emit()
            Work(branch=1, step=2).emit(key="upload")
        taken.update(TestBuildImage(image="api", stage="built"))
        taken.complete()
    with EventBus([finisher], clock=FakeClock(T0 + timedelta(minutes=5))):
        EventHandle.attach(root.id, epoch=1).fail(BOOM)
    return [creator.changes, activity.changes, finisher.changes]


class TestJsonLinesAndTheTree:
    @given(data=st.data())
    @settings(max_examples=30, deadline=None)
    def test_a_file_written_by_several_processes_folds_like_memory(self, data):
        """Changes of several processes, shuffled and duplicated into one file, fold into the in-memory tree."""
        per_process = several_processes()
        tagged = [(n, change) for n, changes in enumerate(per_process) for change in changes]
        delivery = chaotic(data, tagged)
        expected = EventTree(change for _, change in tagged)

        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "shared.jsonl")  # noqa: PTH118
            writers = [JsonLinesHandler(path) for _ in per_process]  # one per process
            try:
                for process, change in delivery:
                    writers[process].on_event_change(change)
            finally:
                for writer in writers:
                    writer.close()
            read = list(read_changes(path, strict=True))

        assert [change for _, change in delivery] == read
        assert expected == EventTree(read)
        assert expected.to_dict() == EventTree(read).to_dict()

    def test_the_folded_file_shows_each_owners_final_word(self):
        """The file's tree has the activity's result on the call and the finisher's failure on the root."""
        per_process = several_processes()
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "shared.jsonl")  # noqa: PTH118
            writer = JsonLinesHandler(path)
            for changes in reversed(per_process):  # the owners' changes before the creator's
                for change in changes:
                    writer.on_event_change(change)
            writer.close()
            with open(path, encoding="utf-8") as file:  # noqa: PTH123
                lines = [json.loads(line) for line in file]
            tree = EventTree(read_changes(path, strict=True))

        (root,) = tree.roots
        call = root.children[0]
        assert (FAILED, BOOM, 1) == (root.state, root.error, root.epoch)
        assert (SUCCESS, TestBuildImage(image="api", stage="built")) == (call.state, call.event)
        assert [WORK, WORK] == [child.event.__event_tag__ for child in call.children]
        assert 6 == len(tree)
        assert {1} == {line["epoch"] for line in lines if "epoch" in line}
        assert 3 == sum("epoch" in line for line in lines)
