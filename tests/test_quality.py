"""
The code checks that CI must not skip: strict typing, lint and format, and the api standing alone.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.mark.slow
def test_mypy_strict_passes_on_api_and_sdk():
    """mypy in strict mode finds no error in alien_events_api and alien_events_sdk."""
    done = run(sys.executable, "-m", "mypy")
    assert 0 == done.returncode, done.stdout + done.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (pathlib.Path(sys.executable).parent / "ruff").exists(),
    reason="ruff is not installed",
)
def test_ruff_lint_and_format_are_clean():
    """ruff check and ruff format --check pass on the whole repository."""
    ruff = pathlib.Path(sys.executable).parent / "ruff"
    ruff_cmd = str(ruff) if ruff.exists() else "ruff"
    check = run(ruff_cmd, "check", ".")
    assert 0 == check.returncode, check.stdout + check.stderr
    fmt = run(ruff_cmd, "format", "--check", ".")
    assert 0 == fmt.returncode, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_api_wheel_installs_and_works_alone():
    """The api wheel, installed alone in a fresh venv, works and brings no cattrs, pluggy or SDK."""
    done = run(sys.executable, "scripts/check_api_alone.py")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "api stands alone" in done.stdout


def test_versions_agree():
    """The version in each distribution's metadata is the one the packages report."""
    import alien_events_api

    for dist in ("api", "sdk"):
        text = (ROOT / "dists" / dist / "pyproject.toml").read_text(encoding="utf-8")
        assert f'version = "{alien_events_api.__version__}"' in text
