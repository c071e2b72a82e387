"""
``EventTree`` and ``EventNode``: folding changes into a tree whatever their order (R5/R6).

The properties run random programs through a real ``EventBus`` (random nesting, updates and
state changes, so every ``seq`` is the bus's own), then deliver the recorded changes in random
orders with random duplicates and compare the folded trees. Times come from fake clocks and
integer microseconds, never from the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rust_test_events import (
    TestBuildImage,
    TestBuildingImage,
    TestBuildingStack,
    TestDeployingStack,
)

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    EventHandle,
    EventState,
    PushProgress,
    StateChanged,
    Updated,
)
from alien_events_sdk import EventBus, EventNode, EventTree, RecordingHandler

NONE, STARTED, SUCCESS, FAILED = (
    EventState.NONE,
    EventState.STARTED,
    EventState.SUCCESS,
    EventState.FAILED,
)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BOOM = AlienError(code="BOOM", message="it broke")


# -- helpers ------------------------------------------------------------------------------------


def at(micros):
    """The aware datetime ``micros`` microseconds after T0."""
    return EPOCH + timedelta(microseconds=T0 + micros)


def created(event_id, parent_id=None, *, t=0, event=None, state=NONE, error=None, seq=0):
    """A ``Created`` at T0 + ``t`` microseconds."""
    event = TestBuildingStack(stack=event_id) if event is None else event
    return Created.unchecked(event_id, parent_id, T0 + t, event, state, error, seq)


def updated(event_id, t, event, seq=1):
    """An ``Updated`` at T0 + ``t`` microseconds."""
    return Updated.unchecked(event_id, T0 + t, event, seq)


def state_changed(event_id, t, state, error=None, seq=1):
    """A ``StateChanged`` at T0 + ``t`` microseconds."""
    return StateChanged.unchecked(event_id, T0 + t, state, error, seq)


def ids(nodes):
    return [node.id for node in nodes]


def view(node):
    """Everything a node says about itself and its subtree, through its public properties."""
    return (
        node.id,
        node.parent_id,
        node.event,
        node.state,
        node.error,
        node.created_at,
        node.updated_at,
        node.seq,
        [view(child) for child in node.children],
    )


def in_order_oracle(changes):
    """
    The tree an in-order delivery must give, by the simplest rule: every change overwrites.

    Independent of ``EventTree``: no versions, no orphans (the bus delivers parents first).
    """
    records = {}
    for change in changes:
        if isinstance(change, Created):
            records[change.id] = {
                "parent_id": change.parent_id,
                "event": change.event,
                "state": change.state,
                "error": change.error,
                "created_at": change.created_at,
                "updated_at": change.created_at,
                "seq": change.seq,
            }
            continue
        record = records[change.id]
        if isinstance(change, Updated):
            record["event"] = change.event
        else:
            record["state"], record["error"] = change.new_state, change.error
        record["updated_at"], record["seq"] = change.updated_at, change.seq

    def children_of(parent_id):
        kids = [i for i, r in records.items() if r["parent_id"] == parent_id]
        return sorted(kids, key=lambda i: (records[i]["created_at"], i))

    def expected(event_id):
        r = records[event_id]
        return (
            event_id,
            r["parent_id"],
            r["event"],
            r["state"],
            r["error"],
            r["created_at"],
            r["updated_at"],
            r["seq"],
            [expected(child) for child in children_of(event_id)],
        )

    return [expected(root) for root in children_of(None)]


class SteppingClock:
    """A fake clock that moves by the given steps in turn (a step of 0 makes equal times)."""

    def __init__(self, steps):
        self._steps = itertools.cycle(steps)
        self._now = T0

    def __call__(self):
        self._now += next(self._steps)
        return EPOCH + timedelta(microseconds=self._now)


def scrambled_ids():
    """An id factory whose ids do not sort in creation order (37 steps modulo 101)."""
    counter = itertools.count()
    return lambda parent_id, event: f"ev-{next(counter) * 37 % 101:03d}"


# A program is a list of operations on a growing list of handles; `pick` chooses (modulo) a
# parent for an emit (or no parent) and the target of an update or state change.
STAGES = st.sampled_from(["fetch", "compile", "link", "test"])
EMIT = st.tuples(st.just("emit"), st.integers(0, 60), st.sampled_from(list(EventState)), STAGES)
OPERATIONS = st.one_of(
    EMIT,
    st.tuples(st.just("update"), st.integers(0, 60), STAGES),
    st.tuples(st.just("state"), st.integers(0, 60), st.sampled_from(list(EventState))),
)
PROGRAMS = st.builds(lambda first, rest: [first, *rest], EMIT, st.lists(OPERATIONS, max_size=29))
CLOCK_STEPS = st.lists(st.integers(0, 2), min_size=1, max_size=5)


def run_program(program, steps):
    """Run a program through a real bus with a recording handler; return the changes."""
    recorder = RecordingHandler()
    bus = EventBus([recorder], ids=scrambled_ids(), clock=SteppingClock(steps))
    handles = []
    with bus:
        for operation in program:
            kind, pick = operation[0], operation[1]
            if kind == "emit":
                _, _, state, stage = operation
                options = [None, *handles]
                parent = options[pick % len(options)]
                error = BOOM if state is FAILED else None
                event = TestBuildImage(image=f"img-{len(handles)}", stage=stage)
                handles.append(event.emit(state, parent=parent, error=error))
            elif not handles:
                continue
            elif kind == "update":
                index = pick % len(handles)
                handles[index].update(TestBuildImage(image=f"img-{index}", stage=operation[2]))
            else:
                state = operation[2]
                handles[pick % len(handles)].set_state(state, BOOM if state is FAILED else None)
    return recorder.changes


def chaotic(data, changes):
    """Draw a random delivery: the changes plus random duplicates, in a random order."""
    duplicates = data.draw(st.lists(st.sampled_from(changes), max_size=len(changes)))
    return data.draw(st.permutations([*changes, *duplicates]))


# Arbitrary changes to four ids, with conflicting copies: the same seq with other contents.
ARBITRARY_IDS = ["a", "b", "c", "d"]
STATE_AND_ERROR = st.one_of(
    st.tuples(st.sampled_from([NONE, STARTED, SUCCESS]), st.none()),
    st.tuples(
        st.just(FAILED),
        st.one_of(
            st.none(),
            st.builds(
                AlienError, code=st.sampled_from(["X", "Y"]), message=st.sampled_from(["m", "n"])
            ),
        ),
    ),
)
SMALL_EVENTS = st.builds(TestBuildingStack, stack=st.sampled_from(["s1", "s2", "s3"]))
TIMES = st.integers(0, 3)


def arbitrary_created(index):
    parents = st.one_of(st.none(), st.sampled_from(ARBITRARY_IDS[:index])) if index else st.none()
    return st.builds(
        lambda parent, t, event, state_error, seq: created(
            ARBITRARY_IDS[index],
            parent,
            t=t,
            event=event,
            state=state_error[0],
            error=state_error[1],
            seq=seq,
        ),
        parents,
        TIMES,
        SMALL_EVENTS,
        STATE_AND_ERROR,
        st.integers(0, 2),
    )


ARBITRARY_CHANGES = st.lists(
    st.one_of(
        *(arbitrary_created(i) for i in range(len(ARBITRARY_IDS))),
        st.builds(updated, st.sampled_from(ARBITRARY_IDS), TIMES, SMALL_EVENTS, st.integers(0, 3)),
        st.builds(
            lambda event_id, t, state_error, seq: state_changed(
                event_id, t, state_error[0], state_error[1], seq
            ),
            st.sampled_from(ARBITRARY_IDS),
            TIMES,
            STATE_AND_ERROR,
            st.integers(0, 3),
        ),
    ),
    max_size=14,
)

PROPERTY = settings(max_examples=150, deadline=None)


# -- reading and applying -----------------------------------------------------------------------


class TestReading:
    def test_an_empty_tree_has_nothing(self):
        """A new tree has no nodes, roots or orphans and finds no id."""
        tree = EventTree()

        assert 0 == len(tree)
        assert [] == tree.roots
        assert [] == tree.orphans
        assert [] == list(tree)
        assert tree.get("missing") is None
        assert "missing" not in tree
        assert {"roots": [], "orphans": []} == tree.to_dict()

    def test_created_makes_a_root_with_all_its_fields(self):
        """A Created with no parent gives a root node carrying the change's id, data, state and time."""
        tree = EventTree()
        tree.apply(created("r", t=5, event=TestBuildingStack(stack="prod"), state=STARTED))

        node = tree.get("r")
        assert isinstance(node, EventNode)
        assert "r" == node.id
        assert node.parent_id is None
        assert TestBuildingStack(stack="prod") == node.event
        assert STARTED == node.state
        assert node.error is None
        assert at(5) == node.created_at
        assert at(5) == node.updated_at
        assert 0 == node.seq
        assert [] == node.children
        assert not node.is_finished
        assert [node] == tree.roots
        assert 1 == len(tree)
        assert "r" in tree

    def test_a_child_hangs_under_its_parent_not_among_the_roots(self):
        """A Created whose parent is known becomes that parent's child and is not a root."""
        tree = EventTree([created("p", t=1), created("c", "p", t=2)])

        assert ["p"] == ids(tree.roots)
        assert ["c"] == ids(tree.get("p").children)
        assert "p" == tree.get("c").parent_id
        assert [] == tree.orphans
        assert 2 == len(tree)

    def test_children_are_ordered_by_creation_time_then_id(self):
        """Children sort by created_at, and children created at the same instant sort by id."""
        tree = EventTree(
            [
                created("p"),
                created("late", "p", t=9),
                created("b", "p", t=3),
                created("c", "p", t=3),
                created("a", "p", t=3),
                created("early", "p", t=1),
            ]
        )

        assert ["early", "a", "b", "c", "late"] == ids(tree.get("p").children)

    def test_roots_are_ordered_by_creation_time_then_id(self):
        """Roots sort by created_at, ties broken by id, whatever order they arrived in."""
        tree = EventTree([created("z", t=2), created("y", t=1), created("x", t=2)])

        assert ["y", "x", "z"] == ids(tree.roots)

    def test_iteration_is_depth_first_in_child_order(self):
        """Iterating a tree yields each root then its subtree depth first, children in order."""
        tree = EventTree(
            [
                created("r1", t=1),
                created("r2", t=2),
                created("a", "r1", t=3),
                created("a1", "a", t=4),
                created("b", "r1", t=5),
                created("r2c", "r2", t=6),
            ]
        )

        assert ["r1", "a", "a1", "b", "r2", "r2c"] == [node.id for node in tree]
        assert ["a", "a1", "b"] == [node.id for node in tree.get("r1").walk()][1:]

    def test_updated_replaces_the_data_and_moves_seq_and_updated_at(self):
        """An Updated replaces the event data and raises seq and updated_at, leaving the state."""
        tree = EventTree(
            [
                created("r", t=1, event=TestBuildImage(image="i", stage="a"), state=STARTED),
                updated("r", 7, TestBuildImage(image="i", stage="b"), seq=1),
            ]
        )

        node = tree.get("r")
        assert TestBuildImage(image="i", stage="b") == node.event
        assert STARTED == node.state
        assert 1 == node.seq
        assert at(1) == node.created_at
        assert at(7) == node.updated_at

    def test_state_changed_to_failed_keeps_the_error(self):
        """A StateChanged to FAILED sets the state and the error, and the node is finished."""
        tree = EventTree([created("r", state=STARTED), state_changed("r", 4, FAILED, BOOM)])

        node = tree.get("r")
        assert FAILED == node.state
        assert BOOM == node.error
        assert node.is_finished
        assert at(4) == node.updated_at

    def test_success_is_finished_and_none_or_started_are_not(self):
        """is_finished is true for SUCCESS and FAILED only."""
        finished = {}
        for state in EventState:
            tree = EventTree([created("r", state=state, error=BOOM if state is FAILED else None)])
            finished[state] = tree.get("r").is_finished

        assert {NONE: False, STARTED: False, SUCCESS: True, FAILED: True} == finished

    def test_node_to_dict_is_plain_data(self):
        """A node's to_dict gives wire-style data with microsecond times and its children."""
        tree = EventTree(
            [
                created("p", t=1, event=TestBuildingStack(stack="s"), state=STARTED),
                created("c", "p", t=2, event=TestBuildingImage(image="i")),
                state_changed("p", 3, FAILED, BOOM, seq=1),
            ]
        )

        assert {
            "id": "p",
            "parentId": None,
            "event": {"type": "TestBuildingStack", "stack": "s"},
            "state": "failed",
            "error": {"code": "BOOM", "message": "it broke", "retryable": False, "internal": False},
            "createdAt": T0 + 1,
            "updatedAt": T0 + 3,
            "seq": 1,
            "children": [
                {
                    "id": "c",
                    "parentId": "p",
                    "event": {"type": "TestBuildingImage", "image": "i"},
                    "state": "none",
                    "error": None,
                    "createdAt": T0 + 2,
                    "updatedAt": T0 + 2,
                    "seq": 0,
                    "children": [],
                }
            ],
        } == tree.get("p").to_dict()

    def test_repr_names_the_id_type_state_and_child_count(self):
        """A node's repr shows its id, event type, state and number of children."""
        tree = EventTree([created("p", state=STARTED), created("c", "p")])

        assert "<EventNode p TestBuildingStack started children=1>" == repr(tree.get("p"))

    def test_trees_compare_by_content_and_are_unhashable(self):
        """Two trees are equal when their contents are, never equal to other types, and unhashable."""
        changes = [created("p"), created("c", "p", t=1)]

        assert EventTree(changes) == EventTree(reversed(changes))
        assert EventTree(changes) != EventTree(changes[:1])
        assert EventTree() != {"roots": [], "orphans": []}
        with pytest.raises(TypeError):
            hash(EventTree())

    def test_apply_refuses_a_handle(self):
        """apply() raises TypeError naming the type when given an object with an id that is no change."""
        tree = EventTree()

        with pytest.raises(TypeError, match="apply\\(\\) takes a change, got EventHandle"):
            tree.apply(EventHandle("x"))
        assert 0 == len(tree)
        assert tree.get("x") is None

    def test_apply_refuses_what_is_not_a_change(self):
        """apply() raises TypeError naming the type when given a dict instead of a change."""
        tree = EventTree()

        with pytest.raises(TypeError, match="apply\\(\\) takes a change, got dict"):
            tree.apply({"id": "x"})

    def test_the_constructor_folds_an_iterable(self):
        """EventTree(changes) equals a tree fed the same changes one by one."""
        changes = [created("p"), created("c", "p", t=1), state_changed("c", 2, SUCCESS)]
        by_hand = EventTree()
        for change in changes:
            by_hand.apply(change)

        assert by_hand.to_dict() == EventTree(iter(changes)).to_dict()


# -- out of order, duplicates and conflicts -----------------------------------------------------


class TestOutOfOrder:
    def test_a_child_before_its_parent_is_an_orphan_until_the_parent_arrives(self):
        """A child whose parent has not arrived is listed in orphans, not roots, then attaches."""
        tree = EventTree([created("c", "p", t=2)])

        assert ["c"] == ids(tree.orphans)
        assert [] == tree.roots
        assert 1 == len(tree)
        assert "c" in tree

        tree.apply(created("p", t=1))

        assert [] == tree.orphans
        assert ["p"] == ids(tree.roots)
        assert ["c"] == ids(tree.get("p").children)

    def test_a_chain_delivered_backwards_rebuilds_the_chain(self):
        """Grandchild, child, then root: orphans hang on to their subtrees until the root comes."""
        tree = EventTree([created("g", "c", t=3), created("c", "r", t=2)])

        assert ["c"] == ids(tree.orphans)
        assert ["g"] == ids(tree.get("c").children)

        tree.apply(created("r", t=1))

        assert [("r", [("c", [("g", [])])])] == [
            (r.id, [(c.id, [(g.id, []) for g in c.children]) for c in r.children])
            for r in tree.roots
        ]
        assert [] == tree.orphans

    def test_an_orphan_moves_to_a_smaller_missing_parent_and_leaves_the_larger_one(self):
        """An orphan whose later Created copy names a smaller, still missing parent waits for that one only."""
        tree = EventTree([created("c", "p2", t=3), created("c", "p1", t=4)])

        assert ["c"] == ids(tree.orphans)
        assert "p1" == tree.get("c").parent_id

        tree.apply(created("p2", t=1))

        assert [] == tree.get("p2").children
        assert ["c"] == ids(tree.orphans)

        tree.apply(created("p1", t=2))

        assert ["c"] == ids(tree.get("p1").children)
        assert [] == tree.orphans
        assert ["p2", "p1"] == ids(tree.roots)

    def test_an_orphan_leaves_its_missing_parent_while_a_sibling_keeps_waiting(self):
        """Re-parenting one of two orphans of a missing parent leaves the other waiting for it."""
        tree = EventTree(
            [created("a", "p2", t=3), created("b", "p2", t=4), created("a", "p1", t=5)]
        )

        tree.apply(created("p2", t=1))
        tree.apply(created("p1", t=2))

        assert ["b"] == ids(tree.get("p2").children)
        assert ["a"] == ids(tree.get("p1").children)
        assert [] == tree.orphans

    def test_orphans_are_ordered_by_creation_time_then_id(self):
        """Orphans waiting for different parents list by created_at, ties by id."""
        tree = EventTree(
            [created("y", "p1", t=5), created("x", "p2", t=5), created("w", "p1", t=1)]
        )

        assert ["w", "x", "y"] == ids(tree.orphans)

    def test_changes_before_created_wait_and_apply_when_it_arrives(self):
        """Updates and state changes for an unknown id are kept, then applied by its Created."""
        tree = EventTree(
            [
                state_changed("r", 9, SUCCESS, seq=2),
                updated("r", 5, TestBuildingStack(stack="second"), seq=1),
            ]
        )

        assert tree.get("r") is None
        assert "r" not in tree
        assert 0 == len(tree)
        assert [] == tree.roots

        tree.apply(created("r", t=1, event=TestBuildingStack(stack="first"), state=STARTED))

        node = tree.get("r")
        assert (TestBuildingStack(stack="second"), SUCCESS, 2) == (node.event, node.state, node.seq)
        assert (at(1), at(9)) == (node.created_at, node.updated_at)
        assert 1 == len(tree)

    def test_duplicates_change_nothing(self):
        """Delivering every change twice gives the same tree as delivering each once."""
        changes = [
            created("r", state=STARTED),
            created("c", "r", t=1),
            updated("c", 2, TestBuildingImage(image="x")),
            state_changed("r", 3, SUCCESS),
        ]

        assert EventTree(changes).to_dict() == EventTree(changes + changes).to_dict()

    def test_a_stale_state_change_does_not_undo_a_newer_one(self):
        """A StateChanged with a lower seq arriving late leaves the newer state in place."""
        tree = EventTree(
            [
                created("r", state=STARTED),
                state_changed("r", 9, SUCCESS, seq=3),
                state_changed("r", 5, FAILED, BOOM, seq=2),
                state_changed("r", 1, STARTED, seq=1),
            ]
        )

        node = tree.get("r")
        assert (SUCCESS, None, 3) == (node.state, node.error, node.seq)

    def test_data_and_state_are_versioned_separately(self):
        """A late low-seq Updated still sets the data when the state already moved further."""
        tree = EventTree(
            [
                created("r", event=TestBuildingStack(stack="v0"), state=STARTED),
                state_changed("r", 9, SUCCESS, seq=2),
                updated("r", 5, TestBuildingStack(stack="v1"), seq=1),
            ]
        )

        node = tree.get("r")
        assert (TestBuildingStack(stack="v1"), SUCCESS, 2) == (node.event, node.state, node.seq)

    def test_a_late_created_copy_does_not_reset_the_state(self):
        """A duplicate Created (seq 0) arriving after a state change does not put the old state back."""
        tree = EventTree([created("r", state=STARTED), state_changed("r", 2, SUCCESS)])
        tree.apply(created("r", state=STARTED))

        assert SUCCESS == tree.get("r").state

    def test_conflicting_created_copies_agree_in_any_order(self):
        """Copies of a Created that disagree keep the earliest time and a parent over none, in any order."""
        copies = [
            created("c", None, t=5),
            created("c", "p2", t=3),
            created("c", "p1", t=4),
        ]
        parents = [created("p1", t=0), created("p2", t=0)]

        trees = [EventTree([*parents, *order]) for order in itertools.permutations(copies)]

        assert 1 == len({repr(tree.to_dict()) for tree in trees})
        node = trees[0].get("c")
        assert (at(3), "p1") == (node.created_at, node.parent_id)
        assert ["c"] == ids(trees[0].get("p1").children)
        assert [] == trees[0].get("p2").children
        assert ["p1", "p2"] == ids(trees[0].roots)

    def test_same_seq_conflict_is_won_by_the_later_time_in_any_order(self):
        """Two StateChanged with one seq (a re-execution) resolve to the later one in both orders."""
        first = state_changed("r", 5, FAILED, BOOM, seq=1)
        second = state_changed("r", 8, SUCCESS, seq=1)

        forward = EventTree([created("r", state=STARTED), first, second])
        backward = EventTree([created("r", state=STARTED), second, first])

        assert (SUCCESS, None) == (forward.get("r").state, forward.get("r").error)
        assert forward.to_dict() == backward.to_dict()

    def test_same_seq_same_time_conflict_resolves_the_same_in_any_order(self):
        """Two Updated with one seq and one time pick the same winner whatever the order."""
        one = updated("r", 5, TestBuildingStack(stack="attempt-1"), seq=1)
        two = updated("r", 5, TestBuildingStack(stack="attempt-2"), seq=1)

        forward = EventTree([created("r"), one, two])
        backward = EventTree([two, created("r"), one])

        assert forward.to_dict() == backward.to_dict()
        assert forward.get("r").event in {one.event, two.event}

    def test_same_seq_tie_that_differs_only_in_an_error_is_order_insensitive(self):
        """Two same-seq, same-time StateChanged differing only in an attached error fold alike in both orders."""
        with_error = state_changed("r", 5, SUCCESS, BOOM, seq=1)
        without = state_changed("r", 5, SUCCESS, None, seq=1)

        forward = EventTree([created("r"), with_error, without])
        backward = EventTree([created("r"), without, with_error])

        assert forward.get("r").error == backward.get("r").error

    def test_seqless_changes_apply_in_arrival_order(self):
        """Changes without seq (Alien producers) apply in arrival order, even going backwards."""
        tree = EventTree(
            [
                created("r", event=TestBuildingStack(stack="v0"), seq=None),
                state_changed("r", 1, STARTED, seq=None),
                updated("r", 2, TestBuildingStack(stack="v1"), seq=None),
                state_changed("r", 3, SUCCESS, seq=None),
                updated("r", 1, TestBuildingStack(stack="v2"), seq=None),
                state_changed("r", 2, STARTED, seq=None),
            ]
        )

        node = tree.get("r")
        assert (TestBuildingStack(stack="v2"), STARTED) == (node.event, node.state)
        assert 0 == node.seq
        assert at(3) == node.updated_at

    def test_seqless_created_counts_as_seq_zero(self):
        """A Created without seq is read as seq 0: a later seq 1 change supersedes it either way."""
        changes = [created("r", state=STARTED, seq=None), state_changed("r", 1, SUCCESS, seq=1)]

        assert SUCCESS == EventTree(changes).get("r").state
        assert SUCCESS == EventTree(reversed(changes)).get("r").state


class TestFoldProperties:
    @PROPERTY
    @given(program=PROGRAMS, steps=CLOCK_STEPS)
    def test_in_order_delivery_gives_the_programs_tree(self, program, steps):
        """Folding a real bus's changes in order gives the tree of last writes, children by time then id."""
        changes = run_program(program, steps)
        tree = EventTree(changes)

        assert in_order_oracle(changes) == [view(root) for root in tree.roots]
        assert [] == tree.orphans
        assert len({c.id for c in changes}) == len(tree)

    @PROPERTY
    @given(program=PROGRAMS, steps=CLOCK_STEPS, data=st.data())
    def test_any_order_with_duplicates_gives_the_in_order_tree(self, program, steps, data):
        """A random delivery order with random duplicates folds into the tree of the in-order delivery."""
        changes = run_program(program, steps)
        reference = EventTree(changes)

        folded = EventTree(chaotic(data, changes))

        assert reference.to_dict() == folded.to_dict()
        assert reference == folded

    @PROPERTY
    @given(program=PROGRAMS, steps=CLOCK_STEPS, data=st.data())
    def test_roots_orphans_and_pending_changes_at_every_step(self, program, steps, data):
        """At each step of a chaotic delivery, roots, orphans and children match the Createds seen so far."""
        changes = run_program(program, steps)
        parents = {c.id: c.parent_id for c in changes if isinstance(c, Created)}
        tree = EventTree()
        seen = set()

        for change in chaotic(data, changes):
            tree.apply(change)
            if isinstance(change, Created):
                seen.add(change.id)

            assert len(seen) == len(tree)
            assert {i for i in seen if parents[i] is None} == set(ids(tree.roots))
            assert {i for i in seen if parents[i] is not None and parents[i] not in seen} == set(
                ids(tree.orphans)
            )
            for event_id in parents:
                node = tree.get(event_id)
                assert (event_id in seen) == (node is not None) == (event_id in tree)
                if node is not None:
                    assert {i for i in seen if parents[i] == event_id} == set(ids(node.children))

    @PROPERTY
    @given(changes=ARBITRARY_CHANGES, data=st.data())
    def test_conflicting_versioned_changes_fold_the_same_in_any_order(self, changes, data):
        """Any versioned changes, same-seq conflicts and disagreeing Created copies included, fold alike in any order."""
        reference = EventTree(changes)

        folded = EventTree(chaotic(data, changes)) if changes else EventTree()

        assert reference.to_dict() == folded.to_dict()

    @PROPERTY
    @given(
        steps=st.lists(
            st.one_of(
                st.builds(lambda s: ("state", s), st.sampled_from([STARTED, SUCCESS, NONE])),
                st.builds(lambda s: ("data", s), st.sampled_from(["a", "b", "c"])),
            ),
            max_size=8,
        ),
        times=st.lists(st.integers(0, 5), min_size=8, max_size=8),
    )
    def test_seqless_changes_keep_the_last_arrival(self, steps, times):
        """For seq-less changes the final data and state are the last ones delivered, whatever their times."""
        changes = [created("r", event=TestBuildingStack(stack="start"), state=NONE, seq=None)]
        for (kind, value), t in zip(steps, times, strict=False):
            if kind == "state":
                changes.append(state_changed("r", t, value, seq=None))
            else:
                changes.append(updated("r", t, TestBuildingStack(stack=value), seq=None))
        states = [value for kind, value in steps if kind == "state"]
        datas = [value for kind, value in steps if kind == "data"]

        node = EventTree(changes).get("r")

        assert ([NONE, *states][-1], TestBuildingStack(stack=["start", *datas][-1])) == (
            node.state,
            node.event,
        )


# -- roll-ups -----------------------------------------------------------------------------------


def progress(layers):
    return PushProgress(
        operation="push",
        layers_uploaded=layers,
        total_layers=5,
        bytes_uploaded=layers * 100,
        total_bytes=500,
    )


class TestRollUps:
    def test_descendant_counts_count_every_descendant_by_state(self):
        """descendant_counts counts all descendants (not the node itself) per state, zeros included."""
        tree = EventTree(
            [
                created("r", state=STARTED),
                created("a", "r", t=1, state=STARTED),
                created("a1", "a", t=2),
                created("a2", "a", t=3, state=FAILED, error=BOOM),
                created("b", "r", t=4, state=STARTED),
                state_changed("b", 5, SUCCESS),
                created("c", "r", t=6),
            ]
        )

        assert {NONE: 2, STARTED: 1, SUCCESS: 1, FAILED: 1} == tree.get("r").descendant_counts()
        assert {NONE: 1, STARTED: 0, SUCCESS: 0, FAILED: 1} == tree.get("a").descendant_counts()
        assert {NONE: 0, STARTED: 0, SUCCESS: 0, FAILED: 0} == tree.get("c").descendant_counts()

    def test_latest_progress_is_the_most_recently_reported_push_progress(self):
        """latest_progress returns the PushProgress of the subtree's most recently changed node that has one."""
        tree = EventTree(
            [
                created(
                    "r", event=AlienEvent.PushingStack(stack="s", platform="aws"), state=STARTED
                ),
                created("a", "r", t=1, event=AlienEvent.PushingImage(image="a")),
                created("b", "r", t=2, event=AlienEvent.PushingImage(image="b")),
                updated("a", 3, AlienEvent.PushingImage(image="a", progress=progress(1))),
                updated("b", 4, AlienEvent.PushingImage(image="b", progress=progress(2))),
                updated("a", 5, AlienEvent.PushingImage(image="a", progress=progress(3)), seq=2),
            ]
        )

        assert progress(3) == tree.get("r").latest_progress()
        assert progress(2) == tree.get("b").latest_progress()

    def test_latest_progress_is_none_without_push_progress(self):
        """A subtree with no PushProgress anywhere (a str progress does not count) has none."""
        tree = EventTree(
            [
                created("r", state=STARTED),
                created(
                    "c", "r", t=1, event=AlienEvent.CompilingCode(language="rust", progress="3/9")
                ),
                created("p", "r", t=2, event=AlienEvent.PushingImage(image="i")),
            ]
        )

        assert tree.get("r").latest_progress() is None

    def test_latest_progress_ignores_later_state_changes(self):
        """A push completed after a sibling reported progress does not make its older progress the latest."""
        tree = EventTree(
            [
                created(
                    "r", event=AlienEvent.PushingStack(stack="s", platform="aws"), state=STARTED
                ),
                created("a", "r", t=1, event=AlienEvent.PushingImage(image="a"), state=STARTED),
                created("b", "r", t=2, event=AlienEvent.PushingImage(image="b"), state=STARTED),
                updated("a", 3, AlienEvent.PushingImage(image="a", progress=progress(5))),
                updated("b", 5, AlienEvent.PushingImage(image="b", progress=progress(2))),
                state_changed("a", 10, SUCCESS, seq=2),
            ]
        )

        assert progress(2) == tree.get("r").latest_progress()

    def test_elapsed_of_a_running_event_runs_until_now(self):
        """A running event's elapsed time is measured up to the given now."""
        tree = EventTree([created("r", t=0, state=STARTED)])

        assert 2.5 == tree.get("r").elapsed(at(2_500_000))

    def test_elapsed_of_a_finished_event_stops_at_its_end(self):
        """A finished event's elapsed time ends at its last change, whatever now is."""
        tree = EventTree(
            [created("r", t=1_000, state=STARTED), state_changed("r", 1_501_000, FAILED, BOOM)]
        )

        assert 1.5 == tree.get("r").elapsed(at(99_000_000))
        assert 1.5 == tree.get("r").elapsed()

    def test_elapsed_of_a_running_event_without_now_runs_until_the_wall_clock(self):
        """With no ``now``, a running event's elapsed time runs up to the current wall-clock time."""
        three_seconds_ago = time.time_ns() // 1000 - 3_000_000
        tree = EventTree([created("r", t=three_seconds_ago - T0, state=STARTED)])

        before = time.time_ns() // 1000
        elapsed = tree.get("r").elapsed()
        after = time.time_ns() // 1000

        assert (before - three_seconds_ago) / 1e6 <= elapsed <= (after - three_seconds_ago) / 1e6

    def test_elapsed_is_never_negative(self):
        """A now before the event's creation gives zero, not a negative duration."""
        tree = EventTree([created("r", t=5_000_000, state=STARTED)])

        assert 0 == tree.get("r").elapsed(at(0))


# -- pruning and memory -------------------------------------------------------------------------


def lifecycle(number):
    """One finished lifecycle: a scope with an update and a finished child scope."""
    with TestDeployingStack(stack=f"stack-{number}").in_scope() as handle:
        handle.update(TestDeployingStack(stack=f"stack-{number}-updated"))
        with TestBuildingImage(image=f"image-{number}").in_scope():
            pass


class TestPruning:
    def test_prune_drops_finished_roots_keeps_running_ones_and_counts(self):
        """prune_finished removes every all-finished root subtree, keeps running ones, and returns the count."""
        tree = EventTree(
            [
                created("done", t=1, state=STARTED),
                created("done-child", "done", t=2, state=SUCCESS),
                state_changed("done", 3, SUCCESS),
                created("failed", t=4, state=FAILED, error=BOOM),
                created("running", t=5, state=STARTED),
                created("running-child", "running", t=6, state=SUCCESS),
            ]
        )

        assert 3 == tree.prune_finished()
        assert ["running"] == ids(tree.roots)
        assert 2 == len(tree)
        assert tree.get("done") is None
        assert tree.get("done-child") is None
        assert 0 == tree.prune_finished()

    def test_a_running_descendant_keeps_a_finished_root(self):
        """A finished root with a still-running descendant stays, with its whole subtree."""
        tree = EventTree(
            [
                created("r", state=SUCCESS),
                created("c", "r", t=1, state=SUCCESS),
                created("g", "c", t=2, state=STARTED),
            ]
        )

        assert 0 == tree.prune_finished()
        assert 3 == len(tree)

        tree.apply(state_changed("g", 3, SUCCESS))

        assert 3 == tree.prune_finished()
        assert 0 == len(tree)

    def test_late_changes_for_pruned_ids_are_ignored(self):
        """After pruning, late copies of the pruned events' changes do not bring them back."""
        changes = [
            created("r", state=STARTED),
            created("c", "r", t=1, state=STARTED),
            state_changed("c", 2, SUCCESS),
            state_changed("r", 3, SUCCESS, seq=1),
        ]
        tree = EventTree(changes)
        assert 2 == tree.prune_finished()

        for change in [*changes, updated("r", 9, TestBuildingStack(stack="late"), seq=5)]:
            tree.apply(change)

        assert 0 == len(tree)
        assert tree.get("r") is None
        assert {"roots": [], "orphans": []} == tree.to_dict()

    def test_tombstones_are_bounded_by_max_tombstones(self):
        """Only the most recent max_tombstones pruned ids are remembered; older ones may come back."""
        tree = EventTree(max_tombstones=2)
        for number, name in enumerate(["r1", "r2", "r3"]):
            tree.apply(created(name, t=number, state=SUCCESS))
        assert 3 == tree.prune_finished()

        tree.apply(created("r3", state=STARTED))
        tree.apply(created("r2", state=STARTED))
        tree.apply(created("r1", state=STARTED))

        assert ["r1"] == ids(tree.roots)

    def test_twenty_thousand_lifecycles_with_pruning_keep_the_tree_small(self):
        """20,000 finished lifecycles fed through a bus, pruned every 500, never leave more than the running root."""
        tree = EventTree(max_tombstones=1_000)
        bus = EventBus([tree])
        removed = []
        sizes = []
        with bus:
            running = TestBuildingStack(stack="long-running").emit(STARTED)
            for number in range(20_000):
                lifecycle(number)
                if number % 500 == 499:
                    sizes.append(len(tree))
                    removed.append(tree.prune_finished())
                    assert 1 == len(tree)
            running.complete()

        assert [1 + 1_000] * 40 == sizes
        assert 40_000 == sum(removed)
        assert 1 == tree.prune_finished()
        assert 0 == len(tree)

    def test_pruned_tree_memory_stays_flat(self):
        """Traced memory after 6,000 pruned lifecycles is within 1 MB of that after 1,000."""
        tree = EventTree(max_tombstones=1_000)
        bus = EventBus([tree])
        marks = {}
        tracemalloc.start()
        try:
            with bus:
                for number in range(6_000):
                    lifecycle(number)
                    if number % 250 == 249:
                        tree.prune_finished()
                    if number + 1 in {1_000, 6_000}:
                        marks[number + 1] = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

        assert 0 == len(tree)
        assert marks[6_000] - marks[1_000] < 1_000_000

    def test_a_finished_root_with_plain_children_is_pruned(self):
        """A root that ended SUCCESS with plain (NONE, lifecycle-less) children is dropped by prune_finished."""
        tree = EventTree()
        with EventBus([tree]), TestBuildingStack(stack="s").in_scope():
            TestBuildImage(image="i", stage="compile").emit()

        assert 2 == tree.prune_finished()
        assert 0 == len(tree)

    def test_a_finished_orphan_is_pruned_and_its_parent_arrives_childless(self):
        """A finished orphan is pruned; its parent arriving later is a root without it, and its late copies are ignored."""
        orphan = created("c", "p", t=2, state=SUCCESS)
        tree = EventTree([orphan])

        assert 1 == tree.prune_finished()
        assert (0, []) == (len(tree), tree.orphans)

        tree.apply(created("p", t=1, state=STARTED))
        tree.apply(orphan)

        assert ["p"] == ids(tree.roots)
        assert [] == tree.get("p").children
        assert (1, None) == (len(tree), tree.get("c"))

    def test_pruning_one_orphan_keeps_a_running_sibling_waiting(self):
        """Of two orphans of one missing parent, the finished one is pruned and the running one still attaches."""
        tree = EventTree(
            [created("done", "p", t=2, state=SUCCESS), created("busy", "p", t=3, state=STARTED)]
        )

        assert 1 == tree.prune_finished()
        assert ["busy"] == ids(tree.orphans)

        tree.apply(created("p", t=1))

        assert ["busy"] == ids(tree.get("p").children)
        assert [] == tree.orphans

    def test_a_late_child_of_a_pruned_root_does_not_linger(self):
        """A finished child delivered after its root was pruned leaves nothing behind after the next prune."""
        tree = EventTree([created("r", state=STARTED), state_changed("r", 10, SUCCESS)])
        assert 1 == tree.prune_finished()

        tree.apply(created("c", "r", t=5, state=STARTED))
        tree.apply(state_changed("c", 8, SUCCESS))
        tree.prune_finished()

        assert (0, []) == (len(tree), tree.orphans)


# -- the tree as a bus handler ------------------------------------------------------------------


class TestTreeAsHandler:
    def test_a_tree_is_a_bus_handler(self):
        """EventBus([tree]) folds every change the bus delivers into the tree."""
        tree = EventTree()
        bus = EventBus([tree])

        def work():
            with TestBuildingStack(stack="s").in_scope():
                with TestBuildingImage(image="i").in_scope():
                    TestBuildImage(image="i", stage="compile").emit()
                TestDeployingStack(stack="s").emit()

        bus.run(work)

        assert [
            (
                TestBuildingStack(stack="s"),
                SUCCESS,
                [
                    (
                        TestBuildingImage(image="i"),
                        SUCCESS,
                        [(TestBuildImage(image="i", stage="compile"), NONE, [])],
                    ),
                    (TestDeployingStack(stack="s"), NONE, []),
                ],
            )
        ] == [
            (
                root.event,
                root.state,
                [
                    (c.event, c.state, [(g.event, g.state, []) for g in c.children])
                    for c in root.children
                ],
            )
            for root in tree.roots
        ]
        assert 4 == len(tree)

    def test_the_handler_tree_equals_the_tree_of_the_recorded_changes(self):
        """A tree fed by the bus equals a tree folded later from a recording of the same run."""
        tree = EventTree()
        recorder = RecordingHandler()
        bus = EventBus([tree, recorder])

        async def main():
            async with TestBuildingStack(stack="s").in_scope() as handle:
                await handle.aupdate(TestBuildingStack(stack="s2"))
                await asyncio.gather(
                    *(TestBuildImage(image="i", stage=str(n)).aemit() for n in range(5))
                )

        asyncio.run(bus.run(main))

        assert EventTree(recorder.changes) == tree
        assert 6 == len(tree)
        assert TestBuildingStack(stack="s2") == tree.roots[0].event
