"""
The benchmarks still run and print their tables.

Their figures are never asserted: timings on shared machines are noisy; the README records them.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run one benchmark script the way the README says, and return what it did."""
    return subprocess.run(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=BENCH.parent,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "titles"),
    [
        ("bench_lifecycle.py", ["lifecycle: emit + update + complete", "budget"]),
        (
            "bench_jsonl.py",
            ["lifecycle into a JSON-lines file", "in parts", "sum of the parts", "budget"],
        ),
        ("bench_wire.py", ["dump_change_line"]),
    ],
)
def test_a_quick_run_prints_every_table(script, titles):
    """A --quick run ends normally (0 within budget, 1 over it) and prints its tables."""
    done = run_bench(script, "--quick")

    assert done.returncode in {0, 1}, done.stderr
    assert "Traceback" not in done.stderr
    for title in titles:
        assert title in done.stdout, done.stdout


@pytest.mark.slow
def test_the_floor_writes_the_handlers_lines_before_it_is_timed():
    """bench_jsonl_floor.py checks its lines against JsonLinesHandler's and then times both."""
    done = run_bench("bench_jsonl_floor.py", "--quick")

    assert 0 == done.returncode, done.stdout + done.stderr
    assert "the stripped floor (same lines)" in done.stdout
    assert "alien-events into JsonLinesHandler" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "into"),
    [((), "into a handler that keeps nothing"), (("--jsonl",), "into a JSON-lines file")],
)
def test_the_memory_benchmark_reports_the_growth(extra, into):
    """bench_memory.py takes a count (and --jsonl) and prints the peak RSS growth."""
    done = run_bench("bench_memory.py", "20000", *extra)

    assert 0 == done.returncode, done.stderr
    assert f"40,000 events (20,000 scopes, 100,000 changes) {into}: peak RSS grew" in done.stdout
