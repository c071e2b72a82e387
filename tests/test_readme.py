"""
The README's examples run, so the documentation cannot rot.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import sys
import types

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def run_example(index: int, source: str) -> str:
    """Run one example as a module of its own and return what it printed."""
    name = f"readme_example_{index}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, f"README.md example {index}", "exec"), module.__dict__)  # noqa: S102
    finally:
        del sys.modules[name]
    return out.getvalue()


def test_readme_has_examples():
    """The README carries the seed's examples (decorator, emission, updates, scopes, ...)."""
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("index", "source"), list(enumerate(BLOCKS)))
def test_readme_example_runs(index, source):
    """Each README example runs without error, and its own asserts hold."""
    run_example(index, source)


def test_simple_emission_prints_a_uuid():
    """The "Simple event emission" example prints the id of a real (not no-op) handle."""
    source = next(b for b in BLOCKS if "Emitted event with ID" in b)
    printed = run_example(99, source)
    assert re.fullmatch(
        r"Emitted event with ID: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n",
        printed,
    )


def test_handler_example_prints_the_created_change():
    """The "Event handlers" example's handler sees the Created change with a null parent."""
    source = next(b for b in BLOCKS if "class PrintingStore" in b)
    printed = run_example(98, source)
    assert printed.startswith("Creating event ")
    assert printed.endswith(" with parent None\n")
