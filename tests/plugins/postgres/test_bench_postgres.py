"""
bench/bench_postgres.py still runs: it starts its own server and reports its four cases.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[3] / "bench"


@pytest.mark.slow
def test_the_postgres_benchmark_runs_its_four_cases(local_postgres):
    """A short run prints all four cases in changes per second (figures never asserted)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_postgres.py"), "--lifecycles", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert 0 == done.returncode, done.stdout + done.stderr
    for case in ("1 writer, per change", "1 writer, batched", "4 writers, per change"):
        assert case in done.stdout, done.stdout
