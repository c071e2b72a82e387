"""
The upsert's rules one by one, against a real server: each row must match ``EventTree``.

Changes are built by hand (fixed times, explicit ``seq`` and ``epoch``) and written with a
``PostgresEventHandler``; after each scenario the rows are read back and the tree loaded from
them is compared with an ``EventTree`` folded from the same changes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from alien_events_api import (
    AlienError,
    Created,
    Event,
    EventState,
    StateChanged,
    Updated,
    event_type,
)
from alien_events_postgres import PostgresEventHandler, ensure_schema, load_tree
from alien_events_sdk import EventTree

T0 = dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
CANCELLED = AlienError(code="CANCELLED", message="cancelled (evicted)", retryable=True)
TABLES = itertools.count()


@event_type(tag="PgRulesWork")
class Work(Event):
    """A piece of work: a number and a note."""

    n: int
    note: str = ""


def at(k: int) -> dt.datetime:
    return T0 + dt.timedelta(microseconds=k)


def created(event_id, parent=None, *, k=0, n=0, state=EventState.NONE, seq=0, epoch=0, error=None):
    return Created(
        id=event_id,
        parent_id=parent,
        created_at=at(k),
        event=Work(n=n),
        state=state,
        error=error,
        seq=seq,
        epoch=epoch,
    )


def updated(event_id, n, *, seq=1, epoch=0, k=1, note=""):
    return Updated(id=event_id, updated_at=at(k), event=Work(n=n, note=note), seq=seq, epoch=epoch)


def moved(event_id, state, *, seq=1, epoch=0, k=1, error=None):
    return StateChanged(
        id=event_id, updated_at=at(k), new_state=state, error=error, seq=seq, epoch=epoch
    )


def write(dsn, changes, table="alien_events"):
    with PostgresEventHandler(dsn, table=table) as handler:
        for change in changes:
            handler.on_event_change(change)


def rows(dsn, table="alien_events"):
    query = sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        return {row["id"]: row for row in connection.execute(query).fetchall()}


def with_locale_collation(dsn, table):
    """Create the table and give its text columns a locale's collation, where "Zebra" > "apple"."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        ensure_schema(connection, table)
        for column in ("parent_id", "data_tie", "state_tie"):
            connection.execute(
                sql.SQL('ALTER TABLE {} ALTER COLUMN {} TYPE text COLLATE "en-x-icu"').format(
                    sql.Identifier(table), sql.Identifier(column)
                )
            )
        assert ("apple",) == connection.execute(
            """SELECT LEAST('Zebra' COLLATE "en-x-icu", 'apple')"""
        ).fetchone()


def assert_agrees_with_tree(dsn, changes, table="alien_events"):
    assert EventTree(changes).to_dict() == load_tree(dsn, table=table).to_dict()


def test_late_created_keeps_the_newer_data_and_fills_the_fixed_fields(postgres_dsn):
    """An Updated that arrives before its Created keeps its data; the Created fills parent and time."""
    changes = [created("root"), updated("child", 7, seq=1), created("child", "root", k=5, n=1)]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["child"]
    assert {"n": 7, "note": "", "type": "PgRulesWork"} == row["data"]
    assert ("root", "root", at(5)) == (row["parent_id"], row["root_id"], row["created_at"])
    assert "none" == row["state"]
    assert_agrees_with_tree(postgres_dsn, changes)


def test_stale_lower_version_is_ignored(postgres_dsn):
    """A StateChanged with a lower seq than the stored state's changes nothing."""
    changes = [
        created("job", state=EventState.STARTED),
        moved("job", EventState.SUCCESS, seq=3, k=3),
        moved("job", EventState.FAILED, seq=2, k=9, error=AlienError(code="X", message="late")),
    ]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["job"]
    assert ("success", None, 3) == (row["state"], row["error"], row["state_seq"])
    assert at(9) == row["updated_at"]  # the time still moves: the tree does the same
    assert_agrees_with_tree(postgres_dsn, changes)


@pytest.mark.parametrize("order", ["epoch-last", "epoch-first"])
def test_higher_epoch_wins_whatever_its_seq(postgres_dsn, order):
    """A change of epoch 1 beats an epoch-0 change with a higher seq, in either order."""
    first = moved("job", EventState.FAILED, seq=5, epoch=0, k=5)
    second = moved("job", EventState.STARTED, seq=1, epoch=1, k=2)
    pair = [first, second] if order == "epoch-last" else [second, first]
    changes = [created("job", state=EventState.STARTED), *pair]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["job"]
    assert ("started", 1, 1) == (row["state"], row["state_epoch"], row["state_seq"])
    assert (1, 1) == (row["epoch"], row["seq"])
    assert_agrees_with_tree(postgres_dsn, changes)


def test_data_and_state_are_versioned_separately(postgres_dsn):
    """An Updated at seq 2 does not shadow a StateChanged at seq 1 that arrives after it."""
    changes = [created("job"), updated("job", 2, seq=2, k=2), moved("job", EventState.STARTED, k=1)]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["job"]
    assert (2, "started") == (row["data"]["n"], row["state"])
    assert_agrees_with_tree(postgres_dsn, changes)


def test_duplicates_change_nothing(postgres_dsn, postgres_server):
    """Writing every change twice, or three times, gives exactly the rows of writing it once."""
    changes = [
        created("root", state=EventState.STARTED),
        created("leaf", "root", k=1),
        updated("leaf", 3, k=2),
        moved("root", EventState.SUCCESS, k=3),
    ]
    write(postgres_dsn, changes, table="once")
    write(postgres_dsn, [c for c in changes for _ in range(3)], table="thrice")
    assert rows(postgres_dsn, "once") == rows(postgres_dsn, "thrice")


def test_changes_without_seq_apply_in_arrival_order(postgres_dsn):
    """Changes without seq replace data in arrival order and are not replaced by versioned ones."""
    changes = [
        created("alien", seq=None),
        updated("alien", 1, seq=None, k=1),
        updated("alien", 2, seq=None, k=2),
        updated("alien", 9, seq=5, k=3),
        moved("alien", EventState.STARTED, seq=None, k=4),
    ]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["alien"]
    assert (2, None, "started") == (row["data"]["n"], row["data_seq"], row["state"])
    assert_agrees_with_tree(postgres_dsn, changes)


def test_same_version_and_time_is_decided_like_the_tree(postgres_dsn):
    """Two different Updated with the same version and time keep the same winner in both orders."""
    a = updated("job", 1, note="apple", k=4)
    b = updated("job", 1, note="Zed", k=4)
    for table in ("ab", "ba"):
        with_locale_collation(postgres_dsn, table)
    write(postgres_dsn, [created("job"), a, b], table="ab")
    write(postgres_dsn, [created("job"), b, a], table="ba")
    assert "apple" == rows(postgres_dsn, "ab")["job"]["data"]["note"]  # repr order, as Python
    assert "apple" == rows(postgres_dsn, "ba")["job"]["data"]["note"]
    assert_agrees_with_tree(postgres_dsn, [created("job"), a, b], table="ab")


def test_orphans_get_their_root_when_the_root_arrives(postgres_dsn):
    """A child and grandchild stored before their root get root_id filled when it arrives."""
    write(postgres_dsn, [created("grandchild", "child", k=2), created("child", "root", k=1)])
    assert {"child": None, "grandchild": None} == {
        i: r["root_id"] for i, r in rows(postgres_dsn).items()
    }
    write(postgres_dsn, [created("root")])
    assert {"root": "root", "child": "root", "grandchild": "root"} == {
        i: r["root_id"] for i, r in rows(postgres_dsn).items()
    }


def test_a_child_of_a_rootless_parent_gets_the_root_later(postgres_dsn):
    """A child written while its parent waits for the root gets the root with the parent."""
    write(postgres_dsn, [created("child", "root", k=1), created("leaf", "child", k=2)])
    write(postgres_dsn, [updated("root", 4, k=3)])  # a row, but no Created: still no root
    assert None is rows(postgres_dsn)["leaf"]["root_id"]
    write(postgres_dsn, [created("root")])
    assert "root" == rows(postgres_dsn)["leaf"]["root_id"]


def test_disagreeing_parents_resolve_to_the_smallest_like_the_tree(postgres_dsn):
    """Created copies that disagree keep the smallest parent id (and its root) and earliest time."""
    changes = [
        created("a-root"),
        created("b-root", k=1),
        created("x", "b-root", k=3),
        created("y", "x", k=4),
        created("x", "a-root", k=2),
        created("x", "b-root", k=6),  # a late copy: neither its parent nor its time wins
    ]
    write(postgres_dsn, changes)
    found = rows(postgres_dsn)
    assert ("a-root", "a-root", at(2)) == (
        found["x"]["parent_id"],
        found["x"]["root_id"],
        found["x"]["created_at"],
    )
    assert "a-root" == found["y"]["root_id"]  # the descendants moved with it
    assert_agrees_with_tree(postgres_dsn, changes)


def test_parent_ids_compare_by_code_point_as_in_python(postgres_dsn):
    """The smallest parent id is chosen by code point (as Python compares), not by locale."""
    parents = ["apple", "éclair", "Zebra"]
    assert "Zebra" == min(parents)
    with_locale_collation(postgres_dsn, "alien_events")
    changes = [created(p) for p in parents] + [created("kid", p, k=1) for p in parents]
    write(postgres_dsn, changes)
    assert "Zebra" == rows(postgres_dsn)["kid"]["parent_id"]
    assert_agrees_with_tree(postgres_dsn, changes)


def test_parent_and_child_written_at_once_always_link(postgres_dsn):
    """Parents and children written at the same moment from two connections all get their root."""
    rounds = 40
    barrier = threading.Barrier(2)
    errors = []

    def writer(changes):
        try:
            with PostgresEventHandler(postgres_dsn) as handler:
                for change in changes:
                    barrier.wait(timeout=30)
                    handler.on_event_change(change)
        except Exception as exc:
            errors.append(exc)
            barrier.abort()

    parents = [created(f"p{i}", f"r{i}", k=1) for i in range(rounds)]
    children = [created(f"c{i}", f"p{i}", k=2) for i in range(rounds)]
    write(postgres_dsn, [created(f"r{i}") for i in range(rounds)])
    threads = [threading.Thread(target=writer, args=(c,)) for c in (parents, children)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == errors
    roots = {i: r["root_id"] for i, r in rows(postgres_dsn).items()}
    assert all(roots[f"c{i}"] == f"r{i}" for i in range(rounds)), roots


def test_every_order_of_a_small_run_gives_the_same_rows(postgres_dsn):
    """All 120 orders of five changes (an orphan, a late Created, a hand-over) give one set of rows."""
    changes = [
        created("root", state=EventState.STARTED),
        created("leaf", "root", k=1),
        updated("leaf", 5, k=2),
        moved("leaf", EventState.SUCCESS, seq=1, epoch=1, k=3),
        moved("root", EventState.FAILED, k=4, error=AlienError(code="E", message="no")),
    ]
    write(postgres_dsn, changes, table="clean")
    expected = rows(postgres_dsn, "clean")
    with (
        PostgresEventHandler(postgres_dsn, table="shuffled") as handler,
        psycopg.connect(postgres_dsn, autocommit=True) as other,
    ):
        ensure_schema(other, "shuffled")
        for order in itertools.permutations(changes):
            other.execute("TRUNCATE shuffled")
            for change in order:
                handler.on_event_change(change)
            assert expected == rows(postgres_dsn, "shuffled"), order
    assert_agrees_with_tree(postgres_dsn, changes, table="clean")


@pytest.mark.parametrize("cancel_first", [True, False])
@pytest.mark.parametrize("cancel_k", [1, 5, 9])
def test_a_cancelled_ending_loses_a_tie_to_a_success_whatever_the_times(
    postgres_dsn, cancel_first, cancel_k
):
    """At one version a CANCELLED failure loses to a success: earlier, same or later, any order."""
    cancelled = moved("job", EventState.FAILED, seq=2, k=cancel_k, error=CANCELLED)
    success = moved("job", EventState.SUCCESS, seq=2, k=5)
    pair = [cancelled, success] if cancel_first else [success, cancelled]
    changes = [created("job", state=EventState.STARTED), *pair]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["job"]
    assert ("success", None, 1) == (row["state"], row["error"], row["state_rank"])
    assert_agrees_with_tree(postgres_dsn, changes)


def test_a_cancelled_ending_still_wins_at_a_higher_version(postgres_dsn):
    """The rank only breaks ties: a CANCELLED failure beats a success of a lower seq, any time."""
    changes = [
        created("job", state=EventState.STARTED),
        moved("job", EventState.FAILED, seq=3, k=1, error=CANCELLED),
        moved("job", EventState.SUCCESS, seq=2, k=9),
    ]
    write(postgres_dsn, changes)
    row = rows(postgres_dsn)["job"]
    assert ("failed", "CANCELLED", 0) == (row["state"], row["error"]["code"], row["state_rank"])
    assert_agrees_with_tree(postgres_dsn, changes)


def test_a_cancelled_created_loses_its_data_and_state_to_a_tie(postgres_dsn):
    """A Created ending CANCELLED ranks low for data too (as in the tree): an Updated at 0 wins."""
    changes = [
        created("job", k=5, n=1, state=EventState.FAILED, error=CANCELLED),
        updated("job", 2, seq=0, k=1),
        moved("job", EventState.STARTED, seq=0, k=1),
    ]
    for order, table in ((changes, "forward"), (changes[::-1], "backward")):
        write(postgres_dsn, order, table=table)
        row = rows(postgres_dsn, table)["job"]
        got = row["data"]["n"], row["state"], row["data_rank"], row["state_rank"]
        assert (2, "started", 1, 1) == got
        assert_agrees_with_tree(postgres_dsn, order, table=table)


@st.composite
def tied_histories(draw):
    """
    Two events' changes crowded onto few versions and times, CANCELLED endings among them.

    Every event also gets a CANCELLED failure and another ending at one same version, and a
    re-executed Created (another time, maybe ending CANCELLED) at version (epoch, 0).
    """
    versions = st.tuples(st.integers(0, 1), st.integers(0, 2))
    boom = AlienError(code="E", message="boom")
    endings = st.sampled_from(
        [(EventState.SUCCESS, None), (EventState.FAILED, CANCELLED), (EventState.FAILED, boom)]
    )
    changes = []
    for event_id, parent in (("root", None), ("kid", "root")):
        for k in draw(st.lists(st.integers(0, 3), min_size=1, max_size=2)):  # re-executed Created
            state, error = draw(endings)
            epoch = draw(st.integers(0, 1))
            changes.append(
                created(event_id, parent, k=k, n=k, state=state, epoch=epoch, error=error)
            )
        (epoch, seq), k, other = draw(versions), draw(st.integers(0, 3)), draw(st.integers(0, 3))
        changes.append(
            moved(event_id, EventState.FAILED, seq=seq, epoch=epoch, k=k, error=CANCELLED)
        )
        state, error = draw(endings)
        changes.append(moved(event_id, state, seq=seq, epoch=epoch, k=other, error=error))
        for _ in range(draw(st.integers(0, 4))):
            (epoch, seq), k, n = draw(versions), draw(st.integers(0, 3)), draw(st.integers(0, 3))
            state, error = draw(endings)
            changes.append(
                updated(event_id, n, seq=seq, epoch=epoch, k=k)
                if draw(st.booleans())
                else moved(event_id, state, seq=seq, epoch=epoch, k=k, error=error)
            )
    return changes


@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_order_of_tied_and_cancelled_changes_agrees_with_the_tree(postgres_dsn, data):
    """Shuffled, duplicated ties with CANCELLED endings give one set of rows, and EventTree's tree."""
    changes = data.draw(tied_histories())
    delivered = data.draw(st.permutations(changes))
    delivered += data.draw(st.lists(st.sampled_from(changes), max_size=4))
    n = next(TABLES)
    write(postgres_dsn, changes, table=f"tied_clean_{n}")
    write(postgres_dsn, delivered, table=f"tied_chaos_{n}")
    assert rows(postgres_dsn, f"tied_clean_{n}") == rows(postgres_dsn, f"tied_chaos_{n}")
    assert_agrees_with_tree(postgres_dsn, delivered, table=f"tied_chaos_{n}")
