"""
``alien-events view --postgres``: the stored events as a tree, one root's, or followed live.

The command runs in a child process against the real throw-away server; the events are
written through the PostgreSQL handler in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest

from alien_events_api import AlienError, AlienEvent, EventState
from alien_events_postgres import PostgresEventHandler, load_tree
from alien_events_postgres._links import READER_NAME
from alien_events_sdk import EventBus

CLI = [sys.executable, "-m", "alien_events_console._cli"]
TIMEOUT = 120.0  # a bound on the child; never reached when all is well


def view(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``alien-events view`` with ``args`` and return what it did."""
    return subprocess.run(
        [*CLI, "view", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ALIEN_EVENTS_CONSOLE_WIDTH": "100"},
    )


def wait_until_listening(dsn: str) -> None:
    """Wait until a reader's connection has run its LISTEN (a bound, not a measurement)."""
    deadline = time.monotonic() + TIMEOUT
    with psycopg.connect(dsn, autocommit=True) as connection:
        while time.monotonic() < deadline:
            busy = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND state = 'idle' AND query <> ''",
                (READER_NAME,),
            ).fetchone()
            if busy is not None and busy[0] > 0:
                return
            time.sleep(0.05)
    pytest.fail("the viewer never started listening")


def record_two_roots(dsn: str) -> tuple[str, str]:
    """Store a finished stack with a child, and a failed image build; return the root ids."""
    handler = PostgresEventHandler(dsn)
    with EventBus([handler]):
        with AlienEvent.BuildingStack(stack="shop").in_scope() as stack:
            AlienEvent.BuildingImage(image="api:1").emit()
        image = AlienEvent.BuildingImage(image="worker:2").emit(EventState.STARTED)
        image.fail(AlienError(code="BUILD_FAILED", message="compiler crashed"))
    handler.close()
    return stack.id, image.id


def test_json_prints_the_stored_tree(postgres_dsn):
    """``view --postgres DSN --json`` prints the tree ``load_tree`` gives, roots and children."""
    record_two_roots(postgres_dsn)

    done = view("--postgres", postgres_dsn, "--json")

    assert (0, "") == (done.returncode, done.stderr)
    assert load_tree(postgres_dsn).to_dict() == json.loads(done.stdout)


def test_root_limits_the_view_to_one_tree(postgres_dsn):
    """``--root ID`` shows that root's tree only."""
    stack_id, _ = record_two_roots(postgres_dsn)

    done = view("--postgres", postgres_dsn, "--root", stack_id, "--json")

    roots = json.loads(done.stdout)["roots"]
    assert [stack_id] == [root["id"] for root in roots]
    assert ["BuildingImage"] == [child["event"]["type"] for child in roots[0]["children"]]


def test_plain_rendering_names_the_events_and_the_failure(postgres_dsn):
    """The plain console view of the store names each event and shows the failure's message."""
    record_two_roots(postgres_dsn)

    done = view("--postgres", postgres_dsn, "--mode", "plain")

    assert "shop" in done.stdout
    assert "worker:2" in done.stdout
    assert "compiler crashed" in done.stdout


def test_an_empty_store_is_reported(postgres_dsn):
    """A store with no events yet says so, and is not an error."""
    done = view("--postgres", postgres_dsn, "--json")

    assert 0 == done.returncode
    assert "the PostgreSQL store holds no events yet" in done.stderr


def test_follow_shows_changes_committed_while_it_watches(postgres_dsn):
    """``--follow`` prints, at its end, changes committed after it started watching."""
    record_two_roots(postgres_dsn)
    child = subprocess.Popen(
        [*CLI, "view", "--postgres", postgres_dsn, "--follow", "--idle-timeout", "3", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    handler = PostgresEventHandler(postgres_dsn)
    try:
        wait_until_listening(postgres_dsn)
        with EventBus([handler]):
            AlienEvent.PushingImage(image="late:1").emit()
        out, err = child.communicate(timeout=TIMEOUT)
    finally:
        child.kill()
        handler.close()

    assert 0 == child.returncode, err
    images = [root["event"].get("image") for root in json.loads(out)["roots"]]
    assert "late:1" in images


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.jsonl", "--postgres", "postgresql://nowhere"], "one of the two"),
        (["--root", "r1", "x.jsonl"], "--root applies only with --postgres"),
        (["--postgres", "DSN", "--strict"], "--strict applies only to a JSON-lines file"),
    ],
)
def test_arguments_that_do_not_fit_are_usage_errors(args, message):
    """FILE with --postgres, --root without it, or --strict with it: exit 2, saying why."""
    done = view(*args)

    assert 2 == done.returncode
    assert message in done.stderr


def test_an_unreachable_server_is_a_usage_error_with_the_databases_message():
    """A server that refuses connections: exit 2, with "cannot connect" and the driver's reason."""
    done = view("--postgres", "postgresql://nobody@127.0.0.1:1/none", "--json")

    assert 2 == done.returncode
    assert "--postgres: cannot connect:" in done.stderr
    assert "127.0.0.1" in done.stderr
