"""
The durable simulator (durable-execution.md §6.2, layer 1): crash, re-run from the top, deliver.

A 7-step program (``durable_sim.deploy_program``: a fan-out of two branches, a hand-over of
an event to a step, a step whose changes carry ``epoch=attempt``, progress updates) runs
against a memo of step results. It is killed at random ticks (a clock read, a delivery before
or after the durable queue took the change, a step boundary), re-run from the top until it
completes, and its changes reach an ``EventTree`` store through a chaotic channel. The store
must end as the store of one clean run.

Stores are compared on a *projection*: each event's id, parent, data, state and error
(``durable_sim.projection``). Times are left out because a retried step body really runs
later than in a clean run (its ``created_at``/``updated_at`` legitimately differ, and children
are ordered by time), ``seq``/``epoch`` because the winning attempt's epoch is its attempt
number. Where the same changes are folded in different orders the whole tree, times included,
is compared (``EventTree ==``): the clocks are fakes, so the times are the same.
"""

from __future__ import annotations

import functools
import pathlib
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

import durable_sim
import pytest
from durable_sim import (
    PROGRAM_SITES,
    SCOPE_KEY,
    ClockKind,
    CrashMode,
    Memo,
    ReplayFlag,
    Schedule,
    count_ticks,
    projection,
    simulate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import Created, EventState, StateChanged, Updated
from alien_events_jsonl import read_changes
from alien_events_sdk import DerivedIds, EventTree, ReplayPolicy

TICKS = count_ticks()
"""Ticks of one clean run, at every crash site: crash points are drawn up to it."""
PROGRAM_TICKS = count_ticks(PROGRAM_SITES)
"""Ticks of one clean run at the sites that do not depend on delivery (clock, steps)."""
SKIP, ALWAYS = ReplayPolicy.SKIP_ON_REPLAY, ReplayPolicy.DELIVER_ALWAYS

crash_points = st.lists(st.integers(1, TICKS), min_size=1, max_size=4).map(tuple)
policies = st.lists(st.sampled_from(ReplayPolicy), min_size=1, max_size=5).map(tuple)
seeds = st.integers(0, 2**32 - 1)
chaotic_schedules = st.builds(
    Schedule,
    crashes=crash_points,
    mode=st.sampled_from(CrashMode),
    policies=policies,
    channel_seed=seeds,
)
"""Crashes anywhere, in either mode, each run's replay policy, a chaotic channel."""


@functools.cache
def clean():
    """One clean run: no crash, every change delivered at once, in order."""
    return simulate(Schedule())


def ids_of(tree):
    """Every event id in a tree, roots, orphans and their subtrees."""
    return set(projection(tree))


def assert_same_store_as_a_clean_run(outcome):
    """The store of a crashed, chaotically delivered execution is the clean run's store."""
    assert [] == outcome.channel.lost()
    assert 0 == outcome.channel.pending
    assert [] == outcome.store.orphans
    assert ids_of(clean().store) == ids_of(outcome.store)
    assert projection(clean().store) == projection(outcome.store)
    assert clean().result == outcome.result
    assert clean().memo.results == outcome.memo.results


class TestCleanRun:
    def test_a_clean_run_makes_one_settled_event_per_logical_event(self):
        """A clean run leaves 16 events, none started or orphaned, whose ids other processes can compute."""
        tree = clean().store
        assert 16 == len(tree)
        assert [] == tree.orphans
        assert all(node.is_settled for node in tree)
        [root] = tree.roots
        assert DerivedIds(SCOPE_KEY).id_for(None, "DeployingStack") == root.id
        names = [type(node.event).__name__ for node in tree]
        assert 2 == names.count("BuildingImage") == names.count("PushingImage")

    def test_two_clean_runs_give_equal_trees_times_included(self):
        """Derived ids and workflow time make two clean runs' trees equal, times and versions included."""
        assert clean().store == simulate(Schedule()).store

    def test_the_handed_over_event_carries_the_attempt_as_its_epoch(self):
        """The step that takes over PushingStack writes it with epoch = its attempt, so its last change wins."""
        [push] = [node for node in clean().store if type(node.event).__name__ == "PushingStack"]
        assert (1, 2) == push.version
        assert "registry.example" == push.event.destination
        assert EventState.SUCCESS == push.state


class TestCrashes:
    @settings(deadline=None, max_examples=50)
    @given(schedule=chaotic_schedules)
    def test_any_crash_schedule_ends_in_the_clean_run_s_store(self, schedule):
        """Crashed anywhere, re-run until done, delivered chaotically: the store is the clean run's."""
        outcome = simulate(schedule)
        assert_same_store_as_a_clean_run(outcome)
        assert outcome.runs[0].crash_site is not None  # run 1 is the clean run up to its crash
        assert outcome.runs[-1].crash_site is None

    @pytest.mark.parametrize("mode", CrashMode)
    @pytest.mark.parametrize("policy", ReplayPolicy)
    def test_a_crash_at_every_single_tick_ends_in_the_clean_run_s_store(self, mode, policy):
        """A crash at each tick in turn, at every site, still ends in the clean run's store."""
        for tick in range(1, TICKS + 1):
            outcome = simulate(Schedule(crashes=(tick,), mode=mode, policies=(policy,)))
            assert outcome.runs[0].crash_site in durable_sim.ALL_SITES
            assert_same_store_as_a_clean_run(outcome)

    def test_a_crashed_step_runs_again_and_only_that_step(self):
        """After a crash inside a step, only that step runs again: recorded steps are not re-run."""
        push_tick = next(
            tick
            for tick in range(1, TICKS + 1)
            if simulate(Schedule(crashes=(tick,))).memo.attempts["push"] == 2
        )
        outcome = simulate(Schedule(crashes=(push_tick,)))
        assert {**dict.fromkeys(clean().memo.attempts, 1), "push": 2} == dict(outcome.memo.attempts)
        [push] = [node for node in outcome.store if type(node.event).__name__ == "PushingStack"]
        assert 2 == push.epoch

    @settings(deadline=None, max_examples=50)
    @given(schedule=chaotic_schedules)
    def test_the_channel_never_loses_or_invents_a_change(self, schedule):
        """Every change the program handed over reaches the store, and the store is their fold."""
        outcome = simulate(schedule)
        accepted = outcome.channel.accepted
        assert len(accepted) == len(outcome.channel.applied)
        assert EventTree(accepted) == outcome.store
        delivered = [change for run in outcome.runs for change, _ in run.deliveries]
        assert delivered == accepted


class TestReplayPolicy:
    @settings(deadline=None, max_examples=50)
    @given(
        crashes=st.lists(st.integers(1, PROGRAM_TICKS), min_size=1, max_size=4).map(tuple),
        mode=st.sampled_from(CrashMode),
        run_policies=policies,
        channel_seed=seeds,
    )
    def test_suppression_never_changes_ids_or_observed_values(
        self, crashes, mode, run_policies, channel_seed
    ):
        """Skipping replayed deliveries or not, per run, changes no id, step result, draw or store."""
        outcomes = {
            label: simulate(
                Schedule(
                    crashes=crashes,
                    mode=mode,
                    policies=run_policy,
                    channel_seed=channel_seed,
                    sites=PROGRAM_SITES,
                )
            )
            for label, run_policy in (
                ("mixed", run_policies),
                ("skip", (SKIP,)),
                ("all", (ALWAYS,)),
            )
        }
        traces = {label: [run.trace for run in o.runs] for label, o in outcomes.items()}
        assert traces["all"] == traces["skip"] == traces["mixed"]
        memos = {label: (o.memo.results, o.memo.attempts) for label, o in outcomes.items()}
        assert memos["all"] == memos["skip"] == memos["mixed"]
        stores = {label: projection(o.store) for label, o in outcomes.items()}
        assert stores["all"] == stores["skip"] == stores["mixed"] == projection(clean().store)
        for outcome in outcomes.values():
            for run in outcome.runs:
                replayed = [change for change, replaying in run.deliveries if replaying]
                if run.policy is SKIP:
                    assert [] == replayed
        sent = {label: len(o.channel.accepted) for label, o in outcomes.items()}
        assert sent["skip"] <= sent["mixed"] <= sent["all"]

    def test_deliver_always_redelivers_the_replayed_changes_as_exact_duplicates(self):
        """Re-running a recorded history re-sends its changes with the same ids, seqs and epochs."""
        outcome = simulate(Schedule(crashes=(TICKS - 1,), policies=(ALWAYS,)))
        first, second = outcome.runs
        replayed = [change for change, replaying in second.deliveries if replaying]
        assert replayed
        sent_first = [change for change, _ in first.deliveries]
        assert all(change in sent_first for change in replayed)

    def test_a_replay_flag_that_outlasts_the_history_loses_changes_with_skip_on_replay(self):
        """Skip-on-replay is only as good as the flag: replaying past the last recorded step loses changes."""
        broken = [
            tick
            for tick in range(1, TICKS + 1)
            if projection(
                simulate(
                    Schedule(
                        crashes=(tick,),
                        policies=(SKIP,),
                        replay_flag=ReplayFlag.UNTIL_NEW_STEP,
                    )
                ).store
            )
            != projection(clean().store)
        ]
        assert broken
        fixed = simulate(
            Schedule(
                crashes=(broken[0],), policies=(ALWAYS,), replay_flag=ReplayFlag.UNTIL_NEW_STEP
            )
        )
        assert_same_store_as_a_clean_run(fixed)


class TestIds:
    def test_random_ids_make_phantom_events_the_simulator_catches(self):
        """With the bus's default random ids a crash leaves phantom events: the simulator sees them."""
        outcome = simulate(Schedule(crashes=(TICKS // 2,), derived_ids=False))
        clean_count = len(simulate(Schedule(derived_ids=False)).store)
        assert len(outcome.store) > clean_count
        assert ids_of(clean().store).isdisjoint(ids_of(outcome.store))


class TestClocks:
    @settings(deadline=None, max_examples=50)
    @given(
        clock=st.sampled_from(ClockKind),
        crashes=crash_points,
        channel_seed=seeds,
        order=st.randoms(use_true_random=False),
    )
    def test_no_timestamp_decides_the_store(self, clock, crashes, channel_seed, order):
        """With any fake clock, any delivery order of the changes gives one tree, the clean run's."""
        # Kill-mode crashes; unwinding ones have their own test below.
        outcome = simulate(
            Schedule(crashes=crashes, channel_seed=channel_seed, clock=clock, policies=(ALWAYS,))
        )
        changes = list(outcome.channel.accepted)
        in_order = EventTree(changes)
        shuffled = changes + order.sample(changes, len(changes) // 3)
        order.shuffle(shuffled)
        assert in_order == EventTree(shuffled)
        assert in_order == outcome.store
        assert projection(clean().store) == projection(in_order)

    @pytest.mark.parametrize("clock", [ClockKind.BACKWARD, ClockKind.JITTER])
    def test_a_crash_unwinding_through_scopes_never_decides_their_final_state(self, clock):
        """An exception that unwinds the program (eviction, task failure) leaves no event failed."""
        failed = {}
        for tick in range(1, TICKS + 1):
            outcome = simulate(Schedule(crashes=(tick,), mode=CrashMode.UNWIND, clock=clock))
            failed = {
                type(node.event).__name__: tick
                for node in outcome.store
                if node.state is EventState.FAILED
            }
            if failed:
                break
        assert {} == failed


# -- real processes ---------------------------------------------------------------------------

CHILD = pathlib.Path(durable_sim.__file__)
PAUSE = "0.001"  # seconds per tick in the child: long enough for a kill to land mid-run
MAX_LAUNCHES = 30


def launch(memo, events, policy):
    """Start the program in a child process (it imports the project from the venv)."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(memo), str(events), policy.value, PAUSE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path):
    """How many complete lines a file has (0 if it does not exist yet)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_when(proc, events, rng, clean_lines):
    """SIGKILL the child after it wrote some lines, or after a random short sleep."""
    start = lines(events)
    if rng.random() < 0.2:  # often before the program starts, or while it replays
        deadline = time.monotonic() + rng.uniform(0, 0.2)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.0005)
    else:
        target = rng.randint(1, clean_lines // 2)
        while proc.poll() is None and lines(events) - start < target:
            time.sleep(0.0005)
    proc.kill()  # SIGKILL; a no-op if it already exited


def run_child(memo, events, policy):
    """Run the child to completion without kills; return its result line."""
    proc = launch(memo, events, policy)
    out, err = proc.communicate(timeout=120)
    assert 0 == proc.returncode, err
    return out


def read_tree(path):
    """Fold a JSON-lines file into a tree; return the tree, the changes and the bad lines."""
    errors = []
    changes = list(read_changes(path, on_error=errors.append))
    return EventTree(changes), changes, errors


@pytest.fixture(name="clean_child", scope="module")
def _clean_child(tmp_path_factory):
    """One clean child run: its result line and its events file."""
    directory = tmp_path_factory.mktemp("clean")
    events = directory / "events.jsonl"
    out = run_child(directory / "memo.jsonl", events, SKIP)
    return out, events


class TestRealProcesses:
    @pytest.mark.slow
    @pytest.mark.parametrize(
        ("seed", "policy"), [(0, SKIP), (1, ALWAYS), (2, SKIP), (3, ALWAYS), (4, SKIP)]
    )
    def test_sigkilled_and_relaunched_the_child_ends_in_the_clean_run_s_store(
        self, tmp_path, clean_child, seed, policy
    ):
        """Killed with SIGKILL at random moments and relaunched, the file folds to the clean run's tree."""
        rng = random.Random(seed)  # noqa: S311  (seeded kill moments, not a secret)
        clean_out, clean_events = clean_child
        clean_tree, clean_changes, clean_errors = read_tree(clean_events)
        assert [] == clean_errors
        memo, events = tmp_path / "memo.jsonl", tmp_path / "events.jsonl"
        kills = rng.randint(3, 5)
        killed = 0
        for _ in range(MAX_LAUNCHES):
            proc = launch(memo, events, policy)
            if killed < kills:
                kill_when(proc, events, rng, len(clean_changes))
            out, err = proc.communicate(timeout=120)
            if proc.returncode == 0:
                break
            assert -signal.SIGKILL == proc.returncode, err
            killed += 1
        else:
            pytest.fail(f"the child did not complete in {MAX_LAUNCHES} launches")
        assert clean_out == out
        tree, changes, errors = read_tree(events)
        assert len(errors) <= killed  # at most one line torn per kill
        assert [] == tree.orphans
        assert ids_of(clean_tree) == ids_of(tree)
        assert projection(clean_tree) == projection(tree)

        # No change lost: every deterministic (epoch 0) change of the clean run is in the file,
        # and the winning attempt of the epoch=attempt step wrote all its changes.
        def key(change):
            return (change.id, type(change).__name__, change.seq)

        assert {key(c) for c in clean_changes if c.epoch == 0} <= {key(c) for c in changes}
        by_version = defaultdict(set)
        for change in changes:
            by_version[change.id, change.epoch].add(change.seq)
        attempts = Memo(memo).attempts
        for node in tree:
            seqs = by_version[node.id, node.epoch]
            first = 0 if node.epoch == 0 or 0 in seqs else 1
            assert set(range(first, node.seq + 1)) == seqs, node
        [push] = [node for node in tree if type(node.event).__name__ == "PushingStack"]
        assert attempts["push"] == push.epoch
        assert all(isinstance(c, Created | Updated | StateChanged) for c in changes)
