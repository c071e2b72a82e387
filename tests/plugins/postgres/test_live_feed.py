"""
The live feed: readers following the table see every change of a running demo, soon after it.

The real ``alien-events demo`` runs in a child process with ``--handlers postgres`` (and its
JSON-lines record of every change it made). One reader follows the whole table from before
the demo starts (the table does not exist yet); another follows the ``BuildingStack`` tree,
starting once its root is in the table. When the demo is done the test adds one more event
under that root, which tells the readers the run is over. Each reader must have seen every
change of the run (its tree equals the one the stored rows and the run's own record give), and
each change must have reached it within ``NOTICE_BOUND`` seconds of the change's own time: a
generous failure bound, not a speed measurement.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import sys
import threading
import time

import psycopg
from psycopg import sql

from alien_events_api import AlienEvent, Created, EventState, Updated
from alien_events_jsonl import read_changes
from alien_events_postgres import PostgresEventHandler, follow, load_changes, load_tree
from alien_events_sdk import EventTree

SCRIPT = pathlib.Path(sys.executable).parent / "alien-events"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "alien_events_console._cli"]
TABLE = "alien_events"
BOUND = 60.0  # failure bound on any wait: the demo, a reader's silence, the root appearing
NOTICE_BOUND = 10.0  # failure bound between a change's time and a reader having it
SENTINEL = "live-feed-test-end"


class Reader(threading.Thread):
    """Follows the table (or one root's tree) and keeps what came when, until the sentinel."""

    def __init__(self, dsn, root_id=None):
        super().__init__(daemon=True)
        self.received = []  # (wall-clock time, change)
        self.error = None
        self._stream = follow(dsn, root_id, table=TABLE, idle_timeout=BOUND)

    def run(self):
        try:
            for change in self._stream:
                self.received.append((time.time(), change))
                if change.id == SENTINEL:
                    break
        except Exception as exc:
            self.error = exc
        finally:
            self._stream.close()

    def changes(self):
        return [change for _, change in self.received]


def fields_of(change):
    """What a change tells about its event: (part, version) pairs; a Created tells all three."""
    if isinstance(change, Created):
        version = (change.epoch, change.seq or 0)
        return [("created", (0, 0)), ("data", version), ("state", version)]
    if isinstance(change, Updated):
        return [("data", change.version)]
    return [("state", change.version)]


def first_seen(received, change):
    """When the reader first had this change or a later one for each part the change sets."""
    times = []
    for part, version in fields_of(change):
        seen = [
            at
            for at, got in received
            if got.id == change.id and any(p == part and v >= version for p, v in fields_of(got))
        ]
        if not seen:
            return None
        times.append(min(seen))
    return max(times)


def assert_saw_every_change_in_time(reader, run_changes):
    """Every change of the run reached the reader, each within NOTICE_BOUND of its own time."""
    late = {}
    for change in run_changes:
        seen = first_seen(reader.received, change)
        assert seen is not None, f"never seen: {change!r}"
        lag = seen - change.timestamp_micros / 1e6
        if lag > NOTICE_BOUND:
            late[change] = lag
    assert {} == late


def start_demo(dsn, folder):
    """Start ``alien-events demo`` writing through the postgres plugin (and its own record)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALIEN_EVENTS_")}
    env["ALIEN_EVENTS_POSTGRES_DSN"] = dsn
    return subprocess.Popen(
        [*CLI, "demo", "--handlers", "postgres", "--jsonl", "run.jsonl", "--pause", "0.03"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_root(dsn, demo, event_type):
    """The id of the first root of ``event_type`` the demo stores (polling the table)."""
    query = sql.SQL("SELECT id FROM {} WHERE type = %s AND parent_id IS NULL").format(
        sql.Identifier(TABLE)
    )
    deadline = time.monotonic() + BOUND
    with psycopg.connect(dsn, autocommit=True) as connection:
        while time.monotonic() < deadline:
            try:
                row = connection.execute(query, (event_type,)).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row is not None:
                return row[0]
            assert demo.poll() is None, demo.communicate()[1]
            time.sleep(0.01)
    raise AssertionError(f"no {event_type} root within {BOUND} s")


def end_of_run(dsn, root_id):
    """Store one more event under the root: the readers stop when they see it."""
    change = Created(
        id=SENTINEL,
        parent_id=root_id,
        created_at=dt.datetime.now(dt.UTC),
        event=AlienEvent.Finished(),
        state=EventState.SUCCESS,
    )
    with PostgresEventHandler(dsn, table=TABLE) as handler:
        handler.on_event_change(change)
    return change


def test_followers_see_every_change_of_a_running_demo(postgres_dsn, tmp_path):
    """Readers following the table, and one root's tree, see every change of a live demo run."""
    everything = Reader(postgres_dsn)
    everything.start()
    demo = start_demo(postgres_dsn, tmp_path)
    try:
        root_id = wait_for_root(postgres_dsn, demo, "BuildingStack")
        one_tree = Reader(postgres_dsn, root_id)
        one_tree.start()
        out, err = demo.communicate(timeout=BOUND)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert 0 == demo.returncode, out + err
    sentinel = end_of_run(postgres_dsn, root_id)
    for reader in (everything, one_tree):
        reader.join(BOUND)
        assert not reader.is_alive()
        assert reader.error is None, reader.error

    run = [*read_changes(tmp_path / "run.jsonl", strict=True), sentinel]
    run_tree = EventTree(run)
    assert len(run_tree) > 20
    assert run_tree == load_tree(postgres_dsn, table=TABLE)
    assert run_tree == EventTree(everything.changes())
    assert_saw_every_change_in_time(everything, run)

    subtree = {node.id for node in run_tree.get(root_id).walk()}
    assert len(subtree) > 10
    own = [change for change in run if change.id in subtree]
    stored = load_changes(postgres_dsn, root_id, table=TABLE)
    assert EventTree(stored) == EventTree(one_tree.changes())
    assert EventTree(own) == EventTree(one_tree.changes())
    assert subtree == {change.id for change in one_tree.changes()}  # nothing from other trees
    assert_saw_every_change_in_time(one_tree, own)
