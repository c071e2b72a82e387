"""
Reading the table back on a real server: ``load_tree``, ``load_changes`` and ``follow``.

``load_tree`` equals the ``EventTree`` of the same changes whatever the delivery order, and
``follow`` streams the stored changes, then new ones as they commit.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from alien_events_api import (
    Created,
    Event,
    EventHandle,
    EventState,
    StateChanged,
    Updated,
    event_type,
)
from alien_events_postgres import PostgresEventHandler, follow, load_changes, load_tree
from alien_events_sdk import EventBus, EventTree, RecordingHandler

T0 = dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
BOUND = 30.0  # the bound on any wait for a change (never reached when all is well)
READER_APP = "alien-events-postgres-reader"
TABLES = itertools.count()


@event_type(tag="PgReaderWork")
class Work(Event):
    """A piece of work: a number and a note."""

    n: int
    note: str = ""


def write(dsn, changes, table="alien_events"):
    with PostgresEventHandler(dsn, table=table) as handler:
        for change in changes:
            handler.on_event_change(change)


def rows(dsn, table):
    query = sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        return connection.execute(query).fetchall()


def sample_run(extra_handlers=()):
    """A small program's changes: nested events, progress, a failure and a hand-over."""
    recorder = RecordingHandler()
    with EventBus([recorder, *extra_handlers]):
        build = Work(n=1).emit(EventState.STARTED)
        step = Work(n=2).emit(EventState.STARTED, parent=build)
        step.update(Work(n=3, note="half"))
        step.fail(RuntimeError("disk full"))
        retry = EventHandle.attach(step.id, build.id, epoch=1)
        with EventBus([recorder, *extra_handlers]):
            retry.set_state(EventState.STARTED)
            retry.complete()
        Work(n=4).emit(parent=build)
        build.complete()
        Work(n=5).emit()  # another root
    return recorder.changes


@st.composite
def recorded_runs(draw, *, ties=True):
    """
    A program run on a bus with a fake clock, with hand-overs to later epochs.

    With ``ties``, the clock is coarse (changes share times) and some updates are re-executed
    with other content at the same version and time.
    """
    recorder = RecordingHandler()
    micros = itertools.count(0)
    ids = itertools.count()
    epochs = itertools.count(1)

    def clock():
        coarse = draw(st.sampled_from([1, 3])) if ties else 1
        return T0 + dt.timedelta(microseconds=next(micros) // coarse)

    bus = EventBus([recorder], ids=lambda parent, event, *key: f"ev-{next(ids):02d}", clock=clock)
    with bus:
        handles = [Work(n=0).emit(EventState.STARTED)]
        for _ in range(draw(st.integers(1, 8))):
            target = draw(st.sampled_from(handles))
            op = draw(st.sampled_from(["child", "update", "complete", "fail", "handover"]))
            if op == "child":
                handles.append(Work(n=draw(st.integers(0, 9))).emit(parent=target))
            elif op == "update":
                target.update(Work(n=draw(st.integers(0, 9))))
            elif op == "complete":
                target.complete()
            elif op == "fail":
                target.fail(RuntimeError("boom"))
            else:
                epoch = draw(st.integers(1, 2)) if ties else next(epochs)
                EventHandle.attach(target.id, target.parent_id, epoch=epoch, bus=bus).update(
                    Work(n=draw(st.integers(0, 9)), note=f"epoch {epoch}")
                )
    changes = list(recorder.changes)
    updates = [c for c in changes if isinstance(c, Updated)]
    if updates and ties:  # non-deterministic re-execution: same version and time, other content
        for change in draw(st.lists(st.sampled_from(updates), max_size=3)):
            changes.append(change.replace(event=Work(n=change.event.n, note="re-run")))
    return changes


@st.composite
def chaotic_deliveries(draw, changes):
    """The changes shuffled, with some delivered more than once."""
    delivered = list(draw(st.permutations(changes)))
    for duplicate in draw(st.lists(st.sampled_from(changes), max_size=8)):
        delivered.insert(draw(st.integers(0, len(delivered))), duplicate)
    return delivered


@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_delivery_order_gives_the_rows_and_tree_of_a_clean_run(postgres_dsn, data):
    """Shuffled, duplicated deliveries give a clean run's rows, and load_tree equals EventTree."""
    changes = data.draw(recorded_runs())
    delivered = data.draw(chaotic_deliveries(changes))
    n = next(TABLES)
    write(postgres_dsn, changes, table=f"clean_{n}")
    write(postgres_dsn, delivered, table=f"chaos_{n}")
    assert rows(postgres_dsn, f"clean_{n}") == rows(postgres_dsn, f"chaos_{n}")
    expected = EventTree(delivered)
    assert expected == load_tree(postgres_dsn, table=f"chaos_{n}")
    stored_roots = {row["id"]: row["root_id"] for row in rows(postgres_dsn, f"chaos_{n}")}
    for root in expected.roots:
        subtree = {node.id for node in root.walk()}
        assert dict.fromkeys(subtree, root.id) == {i: stored_roots[i] for i in subtree}
        own = EventTree(c for c in changes if c.id in subtree)
        assert own == load_tree(postgres_dsn, root.id, table=f"chaos_{n}")


@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_rebuilt_changes_then_the_rest_fold_like_every_change(postgres_dsn, data):
    """Whatever was stored when a reader started, its rebuilt changes plus the rest fold alike."""
    delivered = data.draw(chaotic_deliveries(data.draw(recorded_runs(ties=False))))
    cut = data.draw(st.integers(0, len(delivered)))
    table = f"prefix_{next(TABLES)}"
    write(postgres_dsn, delivered[:cut], table=table)
    rebuilt = load_changes(postgres_dsn, table=table)
    assert EventTree(delivered) == EventTree([*rebuilt, *delivered[cut:]])


def test_load_tree_equals_the_tree_of_the_same_changes(postgres_dsn):
    """A bus run stored in PostgreSQL loads back as the EventTree its changes fold into."""
    with PostgresEventHandler(postgres_dsn) as handler:
        changes = sample_run([handler])
    tree = load_tree(postgres_dsn)
    assert EventTree(changes) == tree
    assert [EventState.SUCCESS, EventState.NONE] == [root.state for root in tree.roots]
    with psycopg.connect(postgres_dsn) as connection:  # an open connection does as well
        assert tree == load_tree(connection)
        assert not connection.closed


def test_load_tree_of_one_root_holds_only_its_tree(postgres_dsn):
    """load_tree(dsn, root_id) gives exactly the tree under that root."""
    with PostgresEventHandler(postgres_dsn) as handler:
        changes = sample_run([handler])
    first = changes[0].id
    tree = load_tree(postgres_dsn, first)
    assert [first] == [root.id for root in tree.roots]
    assert 3 == len(tree)
    ids = {node.id for node in tree}
    assert EventTree(c for c in changes if c.id in ids) == tree


def test_stored_changes_then_newer_ones_fold_like_all_of_them(postgres_dsn):
    """The changes load_changes rebuilds carry the stored versions: later changes fold on top."""
    changes = sample_run()
    for cut in range(len(changes) + 1):
        table = f"cut_{cut}"
        write(postgres_dsn, changes[:cut], table=table)
        rebuilt = load_changes(postgres_dsn, table=table)
        assert EventTree(changes) == EventTree([*rebuilt, *changes[cut:]]), cut


def test_a_late_update_between_the_stored_versions_still_wins(postgres_dsn):
    """Data stored at seq 1, state at seq 3: an Updated at seq 2 arriving later still lands."""
    stored = [
        Created(id="job", created_at=T0, event=Work(n=0)),
        Updated(id="job", updated_at=T0, event=Work(n=1), seq=1),
        StateChanged(id="job", updated_at=T0, new_state=EventState.SUCCESS, seq=3),
    ]
    late = Updated(id="job", updated_at=T0, event=Work(n=2), seq=2)
    write(postgres_dsn, stored)
    rebuilt = EventTree([*load_changes(postgres_dsn), late])
    assert EventTree([*stored, late]) == rebuilt
    assert Work(n=2) == rebuilt.get("job").event


def test_a_row_still_waiting_for_its_created_keeps_its_latest_time(postgres_dsn):
    """A row with only updates (the winner older than a loser) rebuilds with the loser's time."""
    later = T0 + dt.timedelta(seconds=5)
    stored = [
        Updated(id="job", updated_at=later, event=Work(n=4), seq=4),
        Updated(id="job", updated_at=T0, event=Work(n=1), seq=1, epoch=1),
    ]
    late = Created(id="job", created_at=T0, event=Work(n=0))
    write(postgres_dsn, stored)
    rebuilt = EventTree([*load_changes(postgres_dsn), late])
    assert EventTree([*stored, late]) == rebuilt
    assert later == rebuilt.get("job").updated_at


def test_rows_without_seq_round_trip(postgres_dsn):
    """Rows last set by changes without seq (Alien's own) load back as the same tree."""
    stamp = T0
    changes = [
        Created(id="a", created_at=stamp, event=Work(n=1), seq=None),
        Updated(id="a", updated_at=stamp, event=Work(n=2), seq=4),
        Updated(id="a", updated_at=stamp, event=Work(n=3), seq=None),
        Updated(id="b", updated_at=stamp, event=Work(n=5), seq=None),
    ]
    write(postgres_dsn, changes)
    assert EventTree(changes).to_dict() == load_tree(postgres_dsn).to_dict()
    later = Updated(id="a", updated_at=stamp, event=Work(n=9), seq=None)
    assert EventTree([*changes, later]) == EventTree([*load_changes(postgres_dsn), later])


def test_follow_yields_stored_changes_then_new_ones_as_they_commit(postgres_dsn):
    """follow() gives the stored rows' changes, then each change committed after it started."""
    recorder = RecordingHandler()
    with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler, recorder]):
        root = Work(n=1).emit(EventState.STARTED)
        Work(n=2).emit(parent=root)
        stored = load_changes(postgres_dsn)
        stream = follow(postgres_dsn, idle_timeout=BOUND)
        seen = [next(stream) for _ in stored]
        assert stored == seen
        root.update(Work(n=3))
        root.complete()
        seen += [next(stream), next(stream)]
        stream.close()
    assert recorder.changes[-2:] == seen[-2:]
    assert EventTree(seen) == load_tree(postgres_dsn)


def test_follow_keeps_to_its_root_and_picks_up_late_joiners(postgres_dsn):
    """follow(root_id) skips other trees, and yields orphans once a late parent links them in."""
    write(postgres_dsn, [Created(id="A", created_at=T0, event=Work(n=0))])
    write(postgres_dsn, [Created(id="B", created_at=T0, event=Work(n=0))])
    stream = follow(postgres_dsn, "A", idle_timeout=BOUND)
    assert ["A"] == [next(stream).id for _ in load_changes(postgres_dsn, "A")]
    write(
        postgres_dsn,
        [
            Created(id="B1", parent_id="B", created_at=T0, event=Work(n=1)),
            Created(id="X", parent_id="P", created_at=T0, event=Work(n=2)),  # orphan for now
            Updated(id="B1", updated_at=T0, event=Work(n=3)),
            Created(id="P", parent_id="A", created_at=T0, event=Work(n=4)),  # links X in
        ],
    )
    got = [next(stream), next(stream)]
    assert [
        Created(id="P", parent_id="A", created_at=T0, event=Work(n=4)),
        Created(id="X", parent_id="P", created_at=T0, event=Work(n=2)),
    ] == got
    write(
        postgres_dsn,
        [
            Updated(id="B", updated_at=T0, event=Work(n=5)),
            Updated(id="X", updated_at=T0, event=Work(n=6), seq=2),
        ],
    )
    assert Updated(id="X", updated_at=T0, event=Work(n=6), seq=2) == next(stream)
    stream.close()


def test_follow_reads_the_row_of_a_change_too_big_to_notify(postgres_dsn):
    """A change whose notification would pass 8000 bytes is notified by id and read from its row."""
    big = Work(n=1, note="x" * 20_000)
    write(postgres_dsn, [Created(id="before", created_at=T0, event=Work(n=0))])
    with psycopg.connect(postgres_dsn, autocommit=True) as listener:
        listener.execute("LISTEN alien_events")
        stream = follow(postgres_dsn, idle_timeout=BOUND)
        assert "before" == next(stream).id  # the stored row: from here on, it listens
        with PostgresEventHandler(postgres_dsn) as handler, EventBus([handler]):
            event = big.emit()
            small = Work(n=2).emit()
            got = [next(stream), next(stream)]
        stream.close()
        notices = list(listener.notifies(timeout=BOUND, stop_after=2))
    assert {"id": event.id, "root": event.id, "adopted": 0} == json.loads(notices[0].payload)
    assert [Created, Created] == [type(change) for change in got]
    assert [(event.id, big), (small.id, Work(n=2))] == [(c.id, c.event) for c in got]


def test_follow_stops_after_its_idle_timeout(postgres_dsn):
    """With idle_timeout, follow() ends once nothing new came for that long."""
    write(postgres_dsn, [Created(id="only", created_at=T0, event=Work(n=0))])
    stored = list(follow(postgres_dsn, idle_timeout=0.05))
    assert [Created(id="only", created_at=T0, event=Work(n=0))] == stored


def test_closing_follow_closes_its_connection(postgres_dsn):
    """Closing the generator closes the connection it listened on."""

    def readers():
        with psycopg.connect(postgres_dsn) as connection:
            return connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (READER_APP,),
            ).fetchone()[0]

    write(postgres_dsn, [Created(id="one", created_at=T0, event=Work(n=0))])
    stream = follow(postgres_dsn)
    next(stream)
    assert 1 == readers()
    stream.close()
    deadline = time.monotonic() + BOUND
    while readers():
        assert time.monotonic() < deadline, "the follower's backend is still there"
        time.sleep(0.01)
