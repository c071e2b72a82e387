"""
The README's examples run, so the documentation cannot rot.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import subprocess
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


def test_durable_example_runs_across_two_processes(tmp_path):
    """The durable example starts in one process and finishes in another, into one tree."""
    from alien_events_jsonl import read_changes
    from alien_events_sdk import DerivedIds, EventTree

    source = next(b for b in BLOCKS if "durable.py: start an operation" in b)
    script = tmp_path / "durable.py"
    script.write_text(source, encoding="utf-8")
    events = tmp_path / "events.jsonl"

    def run(phase: str) -> None:
        subprocess.run(
            [sys.executable, str(script), phase, "run-42", str(events)], check=True, timeout=60
        )

    run("start")
    after_start = EventTree(read_changes(events))
    run("finish")
    tree = EventTree(read_changes(events))

    ids = DerivedIds("run-42")
    parent_id = ids.id_for(None, "BuildingStack")
    assert after_start.get(parent_id).state.value == "started"
    (root,) = tree.roots
    assert (root.id, root.state.value, root.epoch) == (parent_id, "success", 1)
    assert [(child.event.__event_tag__, child.id) for child in root.children] == [
        ("BuildingImage", ids.id_for(parent_id, "BuildingImage")),
        ("PushingImage", ids.id_for(parent_id, "PushingImage")),
    ]
    run("finish")  # a retried step makes the same ids: no new event, nothing else changes

    def shape(tree: EventTree) -> list[tuple[object, ...]]:
        return [(n.id, n.parent_id, n.event, n.state, n.error) for n in tree]

    assert shape(EventTree(read_changes(events))) == shape(tree)
