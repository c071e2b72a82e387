"""
Convergence on the real server: concurrent, shuffled, duplicated deliveries leave a clean run's rows.

A realistic run is recorded as wire lines: nested events, progress updates, failures, several
roots and hand-overs of attached handles at higher epochs (a program on a bus), or a durable
execution killed mid-way and re-run from the top (``durable_sim``: derived ids, scopes
unwound as ``CANCELLED``, a step retried at ``epoch=attempt``). Four writer processes
(``pg_writers.py publish``) each ``publish`` every change through the ``postgres`` plugin in an
order of their own, some changes twice, all at once into one table. The rows must equal those
of one clean, in-order run into another table, and ``load_tree`` must equal the ``EventTree``
the changes fold into, whole and root by root.
"""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys

import durable_sim
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from alien_events_api import AlienError, AlienEvent, EventHandle, EventState, PushProgress
from alien_events_postgres import load_tree
from alien_events_sdk import EventBus, EventTree, RecordingHandler, dumps

WRITER = pathlib.Path(__file__).resolve().parents[2] / "support" / "pg_writers.py"
PUBLISHERS = 4
BOUND = 120.0  # failure bound on the writer processes (never reached when all is well)
COLUMNS = ("id", "parent_id", "root_id", "type", "data", "state", "error")
VERSION_COLUMNS = (
    "created_at",
    "updated_at",
    "epoch",
    "seq",
    "data_epoch",
    "data_seq",
    "state_epoch",
    "state_seq",
)


def bus_run(seed):
    """A program's changes: stacks built and pushed, progress, failures, pushes taken over."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible program)
    recorder = RecordingHandler()
    bus = EventBus([recorder])
    with bus:
        for number in range(rng.randint(2, 3)):  # several roots
            root = AlienEvent.BuildingStack(stack=f"stack-{number}").emit(EventState.STARTED)
            for name in ("api", "worker", "web")[: rng.randint(2, 3)]:
                building = AlienEvent.BuildingResource(
                    resource_name=name, resource_type="container"
                ).emit(EventState.STARTED, parent=root)
                compiling = AlienEvent.CompilingCode(language="rust").emit(
                    EventState.STARTED, parent=building
                )
                for line in range(rng.randint(1, 3)):
                    compiling.update(AlienEvent.CompilingCode(language="rust", progress=f"{line}"))
                compiling.complete()
                push_with_hand_overs(rng, bus, building, f"{name}:{number}")
                building.complete()
            if rng.random() < 0.5:
                root.complete()
            else:
                root.fail(RuntimeError(f"stack {number} failed"))
        AlienEvent.Finished().emit(EventState.SUCCESS)  # a root with nothing under it
    return recorder.changes


def push_with_hand_overs(rng, bus, parent, image):
    """Push an image; a failed push is retried by later owners of the event, at epochs 1, 2..."""
    layers = rng.randint(1, 3)
    push = AlienEvent.PushingImage(image=image).emit(EventState.STARTED, parent=parent)
    owner, epoch = push, 0
    while True:
        for layer in range(1, layers + 1):
            progress = PushProgress("Uploading", layer, layers, layer * 10, layers * 10)
            owner.update(AlienEvent.PushingImage(image=image, progress=progress))
        if epoch >= 2 or rng.random() < 0.5:
            owner.complete()
            return
        owner.fail(AlienError(code="PUSH_FAILED", message=f"{image}: 503", retryable=True))
        epoch += 1  # another process takes the event over, at a higher epoch
        owner = EventHandle.attach(push.id, parent.id, epoch=epoch, bus=bus)
        owner.set_state(EventState.STARTED)


def durable_run(crashes, clock):
    """A durable execution killed at ``crashes`` (unwinding its scopes) and re-run: every change."""
    outcome = durable_sim.simulate(
        durable_sim.Schedule(crashes=crashes, mode=durable_sim.CrashMode.UNWIND, clock=clock)
    )
    return [change for run in outcome.runs for change, _ in run.deliveries]


def fan_out_run():
    """A stack whose many resources are built at once: mostly new events, parents and children."""
    recorder = RecordingHandler()
    with EventBus([recorder]):
        for number in range(2):
            root = AlienEvent.BuildingStack(stack=f"stack-{number}").emit(EventState.STARTED)
            for index in range(25):
                building = AlienEvent.BuildingResource(
                    resource_name=f"resource-{index}", resource_type="function"
                ).emit(EventState.STARTED, parent=root)
                AlienEvent.CompilingCode(language="rust").emit(parent=building)
                building.complete()
            root.complete()
    return recorder.changes


def record(changes, path):
    """Write the changes as wire lines, one a line."""
    path.write_text("".join(dumps(change) + "\n" for change in changes), encoding="utf-8")
    return path


def writer_env(dsn, table):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALIEN_EVENTS_")}
    return env | {
        "ALIEN_EVENTS_HANDLERS": "postgres",
        "ALIEN_EVENTS_POSTGRES_DSN": dsn,
        "ALIEN_EVENTS_POSTGRES_TABLE": table,
    }


def publish_concurrently(dsn, table, lines, seeds):
    """Run one publisher per seed, let them all go at once, and wait for every one to finish."""
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), "publish", str(lines), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=writer_env(dsn, table),
        )
        for seed in seeds
    ]
    try:
        for writer in writers:  # each has read its lines and built its bus
            assert "ready\n" == writer.stdout.readline(), writer.communicate(timeout=BOUND)[1]
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            out, err = writer.communicate(timeout=BOUND)
            assert 0 == writer.returncode, err
            assert out.startswith("published "), out + err
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


def publish_in_order(dsn, table, changes):
    """One clean run: every change once, in order, through the plugin."""
    bus = EventBus.from_plugins(["postgres"], postgres={"dsn": dsn, "table": table})
    try:
        for change in changes:
            bus.publish(change)
    finally:
        bus.close()


def stored(dsn, table, columns):
    """The table's rows, by id, with only ``columns``."""
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        return {row["id"]: row for row in connection.execute(query).fetchall()}


def assert_converged(dsn, tmp_path, changes, seeds):
    """Concurrent chaotic publishers leave the clean run's rows; load_tree folds like EventTree."""
    lines = record(changes, tmp_path / "run.jsonl")
    publish_in_order(dsn, "clean_run", changes)
    publish_concurrently(dsn, "chaotic_runs", lines, seeds)
    clean = stored(dsn, "clean_run", COLUMNS)
    assert len(clean) == len({change.id for change in changes})
    assert clean == stored(dsn, "chaotic_runs", COLUMNS)
    assert stored(dsn, "clean_run", ("id", *VERSION_COLUMNS)) == stored(
        dsn, "chaotic_runs", ("id", *VERSION_COLUMNS)
    )
    expected = EventTree(changes)
    assert expected == load_tree(dsn, table="chaotic_runs")
    for root in expected.roots:
        subtree = {node.id for node in root.walk()}
        assert dict.fromkeys(subtree, root.id) == {
            event_id: clean[event_id]["root_id"] for event_id in subtree
        }
        own = EventTree(change for change in changes if change.id in subtree)
        assert own == load_tree(dsn, root.id, table="chaotic_runs")


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_shuffled_publishers_leave_the_rows_of_a_clean_run(postgres_dsn, tmp_path, seed):
    """Four processes publishing a program's changes shuffled and duplicated leave one clean run's rows."""
    changes = bus_run(seed)
    assert any(change.epoch >= 1 for change in changes)  # the run has hand-overs
    assert any(getattr(change, "error", None) is not None for change in changes)  # and failures
    assert_converged(postgres_dsn, tmp_path, changes, [seed * 10 + k for k in range(PUBLISHERS)])


@pytest.mark.parametrize(
    "clock", [durable_sim.ClockKind.FORWARD, durable_sim.ClockKind.BACKWARD], ids=str
)
def test_concurrent_publishers_of_a_crashed_durable_run_converge(postgres_dsn, tmp_path, clock):
    """A durable run killed twice, scopes unwound as CANCELLED and re-run, converges to EventTree's."""
    changes = durable_run(crashes=(4, 40), clock=clock)
    assert any(change.epoch >= 1 for change in changes)
    assert any(
        getattr(change, "error", None) is not None and change.error.code == "CANCELLED"
        for change in changes
    )
    assert_converged(postgres_dsn, tmp_path, changes, range(PUBLISHERS))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parents_and_children_published_at_once_link_up(postgres_dsn, tmp_path, seed):
    """A fan-out's parents and children, written at the same moment by four processes, link up."""
    changes = fan_out_run()
    assert_converged(postgres_dsn, tmp_path, changes, [seed * 10 + k for k in range(PUBLISHERS)])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 6))
def test_more_programs_converge_from_concurrent_publishers(postgres_dsn, tmp_path, seed):
    """More programs, each from four concurrent shuffled publishers: always a clean run's rows."""
    assert_converged(
        postgres_dsn, tmp_path, bus_run(seed), [seed * 10 + k for k in range(PUBLISHERS)]
    )
