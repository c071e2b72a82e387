"""
Shared timing for the benchmarks: best-of-N wall time per operation, and a side-by-side table.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

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
