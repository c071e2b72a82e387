"""
The bus keeps no finished events: memory stays flat however many events pass through it.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_million_events_grow_the_process_by_less_than_a_few_mib():
    """A million events (500,000 scopes with a child) grow the peak RSS by less than 4 MiB."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_memory.py"), "500000"],
        capture_output=True,
        text=True,
        check=True,
    )
    growth = float(re.search(r"peak RSS grew ([0-9.]+) MiB", done.stdout).group(1))
    assert growth < 4.0, done.stdout
