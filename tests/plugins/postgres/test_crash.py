"""
A writer killed with SIGKILL mid-stream loses no change whose emitting call had returned.

A child process (``pg_writers.py emit``) emits nested trees through the ``postgres`` plugin as
fast as it can, some of them in ``transaction()`` batches, and after each emitting call (or
batch) returns it writes the wire lines of the changes that call delivered to a file: those
changes are acknowledged. The test kills it with SIGKILL after a random delay, several rounds
in a row into the same table (each round taking over an event the last one left running, at
a higher epoch), then checks that every acknowledged change is in the table with at least its
version, that a field the latest acknowledged change set holds what it set, and that the
table still reads back as a clean tree.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from alien_events_api import Created, StateChanged, Updated
from alien_events_postgres import load_tree
from alien_events_sdk import dumps, loads

WRITER = pathlib.Path(__file__).resolve().parents[2] / "support" / "pg_writers.py"
TABLE = "crash_events"
BOUND = 60.0  # failure bound on waiting for a writer to start or to die (never reached if well)
ROUNDS = 4


def start_writer(dsn, folder, round_number, seed, adopt=()):
    """Start a writer process whose acknowledgements go to a file of its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALIEN_EVENTS_")}
    env |= {
        "ALIEN_EVENTS_HANDLERS": "postgres",
        "ALIEN_EVENTS_POSTGRES_DSN": dsn,
        "ALIEN_EVENTS_POSTGRES_TABLE": TABLE,
    }
    acks = folder / f"acks-{round_number}.jsonl"
    errors = folder / f"stderr-{round_number}.txt"
    with acks.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(WRITER), "emit", str(seed), *adopt],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    return process, acks, errors


def kill_after_first_ack(process, acks, errors, delay):
    """Wait until the writer acknowledged a change, let it run ``delay`` s more, SIGKILL it."""
    deadline = time.monotonic() + BOUND
    while acks.stat().st_size == 0:
        assert process.poll() is None, errors.read_text()
        assert time.monotonic() < deadline, "the writer acknowledged nothing"
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    returncode = process.wait(timeout=BOUND)
    assert -signal.SIGKILL == returncode, errors.read_text()


def acknowledged(acks):
    """The changes of the complete lines in an acknowledgement file (a cut last line is not one)."""
    text = acks.read_bytes().decode()
    complete = text[: text.rfind("\n") + 1]
    return [loads(line) for line in complete.splitlines()]


def unfinished_root(changes):
    """A root the changes created and never ended (with no state change acknowledged)."""
    ended = {change.id for change in changes if isinstance(change, StateChanged)}
    roots = [c.id for c in changes if isinstance(c, Created) and c.parent_id is None]
    return next((root for root in reversed(roots) if root not in ended), None)


def stored_rows(dsn):
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        rows = connection.execute(
            sql.SQL(
                "SELECT id, parent_id, root_id, created_at, data, state, error,"
                " data_epoch, data_seq, state_epoch, state_seq FROM {}"
            ).format(sql.Identifier(TABLE))
        ).fetchall()
    return {row["id"]: row for row in rows}


def fields_of(change):
    """The fields a change sets, each with the change's version: a Created sets both."""
    if isinstance(change, Created):
        version = (change.epoch, change.seq or 0)
        return {"data": version, "state": version}
    if isinstance(change, Updated):
        return {"data": change.version}
    return {"state": change.version}


def field_value(change, field):
    """What the change puts in a field, as the row holds it (JSON for data and error)."""
    if field == "data":
        return {"data": json.loads(dumps(change.event))}
    state = change.state if isinstance(change, Created) else change.new_state
    error = None if change.error is None else json.loads(dumps(change.error))
    return {"state": state.value, "error": error}


def assert_every_acknowledged_change_is_stored(rows, changes):
    """Each acknowledged change is in its row at its version or a later one; the last one shows."""
    latest = {}
    for change in changes:
        row = rows.get(change.id)
        assert row is not None, f"acknowledged but not stored: {change!r}"
        if isinstance(change, Created):
            assert (change.parent_id, change.created_at) == (row["parent_id"], row["created_at"])
        for field, version in fields_of(change).items():
            stored = (row[f"{field}_epoch"], row[f"{field}_seq"])
            assert stored >= version, f"{field} of {change.id} at {stored}, acknowledged {change!r}"
            key = (change.id, field)
            if key not in latest or version >= latest[key][0]:
                latest[key] = (version, change)
    for (event_id, field), (version, change) in latest.items():
        row = rows[event_id]
        if (row[f"{field}_epoch"], row[f"{field}_seq"]) == version:
            assert field_value(change, field) == {
                key: row[key] for key in field_value(change, field)
            }


def assert_reads_back_cleanly(dsn, rows):
    """Every row is a created event under its root, and each root's tree loads on its own."""
    tree = load_tree(dsn, table=TABLE)
    assert [] == tree.orphans
    assert set(rows) == {node.id for node in tree}
    for root in tree.roots:
        subtree = {node.id for node in root.walk()}
        assert dict.fromkeys(subtree, root.id) == {
            event_id: rows[event_id]["root_id"] for event_id in subtree
        }
        assert [root.to_dict()] == load_tree(dsn, root.id, table=TABLE).to_dict()["roots"]
    return tree


@pytest.mark.parametrize("seed", [11, 12])
def test_a_killed_writer_loses_no_acknowledged_change(postgres_dsn, tmp_path, seed):
    """After SIGKILLs at random moments every acknowledged change is stored, and the table loads."""
    rng = random.Random(seed)  # noqa: S311  (reproducible kill times)
    changes = []
    taken_over = {}
    for round_number in range(ROUNDS):
        root = unfinished_root(changes)
        adopt = () if root is None else (root, "", str(round_number))
        process, acks, errors = start_writer(
            postgres_dsn, tmp_path, round_number, rng.randrange(2**32), adopt
        )
        kill_after_first_ack(process, acks, errors, delay=rng.uniform(0.05, 0.6))
        got = acknowledged(acks)
        assert got, errors.read_text()
        changes += got
        if root is not None:
            taken_over[root] = round_number
    rows = stored_rows(postgres_dsn)
    assert_every_acknowledged_change_is_stored(rows, changes)
    tree = assert_reads_back_cleanly(postgres_dsn, rows)
    assert taken_over, "no round took over an unfinished root"
    for root, epoch in taken_over.items():  # the last owner's epoch wins, whatever its seq
        assert epoch == tree.get(root).epoch
