"""
Shared timing for the benchmarks: best-of-N wall time per operation, and a side-by-side table.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence

import eliot

from alien_events_api import AlienEvent

Case = tuple[str, Callable[[], object]]


def best_ns_per_op(fn: Callable[[], object], *, number: int, repeat: int) -> float:
    """Return the lowest nanoseconds per call of ``fn`` over ``repeat`` rounds of ``number``."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def run_cases(cases: Sequence[Case], *, number: int, repeat: int) -> dict[str, float]:
    """Time every case, interleaved round by round so machine noise hits them alike."""
    results = {name: float("inf") for name, _ in cases}
    for _ in range(repeat):
        for name, fn in cases:
            fn()  # warm up
            results[name] = min(results[name], best_ns_per_op(fn, number=number, repeat=1))
    return results


def print_table(title: str, results: dict[str, float], baseline: str) -> None:
    """Print ns/op and the ratio of each case to ``baseline``."""
    print(f"\n{title}")
    width = max(len(n) for n in results)
    print(f"  {'case':<{width}}  {'ns/op':>9}  {'ratio to ' + baseline:>s}")
    base = results[baseline]
    for name, ns in results.items():
        print(f"  {name:<{width}}  {ns:9,.0f}  {ns / base:6.2f}")


def check_budget(label: str, measured: float, reference: float, budget: float) -> bool:
    """Print whether ``measured / reference`` is within ``budget`` and return it."""
    ratio = measured / reference
    verdict = "within" if ratio <= budget else "OVER"
    print(f"  budget {label}: {ratio:.3f} (limit {budget}) {verdict}")
    return ratio <= budget


def rounds_from_args(description: str | None, *, full_number: int = 10_000) -> tuple[int, int]:
    """Read ``--quick`` from the command line; return (calls per round, rounds)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for smoke runs)")
    args = parser.parse_args()
    return (2_000, 2) if args.quick else (full_number, 7)


def merge_best(best: dict[str, float], new: dict[str, float]) -> None:
    """Keep the lowest figure seen for each case."""
    for name, ns in new.items():
        best[name] = min(best.get(name, float("inf")), ns)


def alien_lifecycle() -> None:
    """The lifecycle every benchmark times: emit an event, update it once, complete it."""
    handle = AlienEvent.BuildingImage(image="api").emit()
    handle.update(AlienEvent.BuildingImage(image="api:2"))
    handle.complete()


def eliot_action() -> None:
    """Eliot's equivalent: an action with a field, one logged message, and its end."""
    with eliot.start_action(action_type="build-image", image="api") as action:
        action.log(message_type="progress", image="api:2")
