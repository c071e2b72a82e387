"""
PostgreSQL store throughput: changes per second into ``alien_events``, one writer and four.

Each writer runs event lifecycles (emit, update, complete: three changes) through an
``EventBus`` with a ``PostgresEventHandler``. "per change" commits every change before the
emitting call returns (the default); "batched" wraps every 100 lifecycles in
``handler.transaction()``, one commit per 300 changes. Writers are separate processes, each
with its own connection, all writing one table.

The server is a throw-away cluster started here with PostgreSQL's durable defaults (fsync and
synchronous commit on), unless ``ALIEN_EVENTS_BENCH_POSTGRES_DSN`` names one to use.

    .venv/bin/python bench/bench_postgres.py [--lifecycles N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import sys
import time
import uuid

import psycopg
from psycopg import sql

from alien_events_api import AlienEvent
from alien_events_postgres import PostgresEventHandler, ensure_schema
from alien_events_sdk import EventBus

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"))
from pg_server import PostgresServer

BATCH = 100
CHANGES_PER_LIFECYCLE = 3


def _writer(dsn: str, table: str, lifecycles: int, batched: bool, start: object) -> None:
    """Run ``lifecycles`` lifecycles into ``table`` (in a process of its own)."""
    handler = PostgresEventHandler(dsn, table=table)
    bus = EventBus([handler])
    start.wait()  # type: ignore[attr-defined]  # a multiprocessing Event
    with bus:
        done = 0
        while done < lifecycles:
            count = min(BATCH, lifecycles - done) if batched else 1
            if batched:
                with handler.transaction():
                    _lifecycles(count)
            else:
                _lifecycles(count)
            done += count
    bus.close()


def _lifecycles(count: int) -> None:
    for number in range(count):
        handle = AlienEvent.BuildingImage(image=f"api:{number}").emit()
        handle.update(AlienEvent.BuildingImage(image=f"api:{number}:pushed"))
        handle.complete()


def _run(dsn: str, *, writers: int, lifecycles: int, batched: bool) -> float:
    """Return changes per second for ``writers`` processes writing ``lifecycles`` each."""
    table = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        ensure_schema(connection, table=table)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_writer, args=(dsn, table, lifecycles, batched, start))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(1.0)  # let every writer import and connect before the clock starts
    began = time.perf_counter()
    start.set()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    if any(process.exitcode != 0 for process in processes):
        msg = f"a writer failed: exit codes {[p.exitcode for p in processes]}"
        raise SystemExit(msg)
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
    expected = writers * lifecycles
    if rows is None or rows[0] != expected:
        msg = f"expected {expected} rows, found {rows}"
        raise SystemExit(msg)
    return writers * lifecycles * CHANGES_PER_LIFECYCLE / elapsed


def main() -> int:
    """Print changes per second for each case, and the ratios between them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=2000, help="per writer (default 2000)")
    args = parser.parse_args()
    dsn = os.environ.get("ALIEN_EVENTS_BENCH_POSTGRES_DSN")
    server = PostgresServer(dsn=dsn, durable=True)
    with server:
        results = {}
        for writers in (1, 4):
            for batched in (False, True):
                label = f"{writers} writer{'s' if writers > 1 else ''}, " + (
                    f"batched ({BATCH} lifecycles per transaction)" if batched else "per change"
                )
                results[label] = _run(
                    server.dsn, writers=writers, lifecycles=args.lifecycles, batched=batched
                )
    print("\nPostgreSQL store: changes per second (3 changes per lifecycle)")
    width = max(map(len, results))
    base = next(iter(results.values()))
    print(f"  {'case':<{width}}  {'changes/s':>10}  ratio to one writer, per change")
    for label, rate in results.items():
        print(f"  {label:<{width}}  {rate:10,.0f}  {rate / base:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
