"""
Memory stays flat: a million lifecycles through a bus grow the process by no more than a few MB.

Run: ``python bench/bench_memory.py [COUNT] [--jsonl]``. Prints the growth of the peak
resident set size after a warm-up, for a bus with one handler that keeps nothing, or with
``--jsonl`` one that writes every change to a JSON-lines file (in a temporary folder,
removed afterwards). The bus keeps no
finished events (change-based design): memory is O(open scopes), never O(events emitted).
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import resource
import sys
import tempfile

from alien_events_api import AlienEvent
from alien_events_jsonl import JsonLinesHandler
from alien_events_sdk import EventBus, NoOpEventHandler


def peak_rss_kib() -> int:
    """The process's peak resident set size so far, in KiB (Linux units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def lifecycles(count: int) -> None:
    """Run ``count`` nested lifecycles (a scope with an updated child) on the current bus."""
    for index in range(count):
        with AlienEvent.BuildingStack(stack="s").in_scope():
            child = AlienEvent.BuildingImage(image=f"img-{index % 10}").emit()
            child.update(AlienEvent.BuildingImage(image="done"))
            child.complete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=1_000_000, help="scopes to run")
    parser.add_argument("--jsonl", action="store_true", help="write every change to a file")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.jsonl:
            folder = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
            handler = stack.enter_context(contextlib.closing(JsonLinesHandler(folder / "e.jsonl")))
            into = "into a JSON-lines file"
        else:
            handler, into = NoOpEventHandler(), "into a handler that keeps nothing"
        with EventBus([handler]):
            lifecycles(10_000)  # warm up: id pools, caches, allocator arenas
            before = peak_rss_kib()
            lifecycles(args.count)
            after = peak_rss_kib()
    events, changes = args.count * 2, args.count * 5
    grew = (after - before) / 1024
    print(
        f"{events:,} events ({args.count:,} scopes, {changes:,} changes) {into}: "
        f"peak RSS grew {grew:.2f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
