"""
Memory stays flat: a million lifecycles through a bus grow the process by no more than a few MB.

Run: ``python bench/bench_memory.py [COUNT]``. Prints the growth of the peak resident set
size after a warm-up, for a bus with one handler that keeps nothing. The bus keeps no
finished events (change-based design): memory is O(open scopes), never O(events emitted).
"""

from __future__ import annotations

import resource
import sys

from alien_events_api import AlienEvent
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
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with EventBus([NoOpEventHandler()]):
        lifecycles(10_000)  # warm up: id pools, caches, allocator arenas
        before = peak_rss_kib()
        lifecycles(count)
        after = peak_rss_kib()
    events = count * 2
    grew = (after - before) / 1024
    print(
        f"{events:,} events ({count:,} scopes, {count * 5:,} changes): peak RSS grew {grew:.2f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
