"""
House rule: every test has a one-sentence docstring saying the behaviour it pins.
"""

from __future__ import annotations

import ast
import pathlib

TESTS = pathlib.Path(__file__).resolve().parent


def test_every_test_has_a_docstring():
    """Every ``test_*`` function under tests/ has a docstring (and the walk finds the tests)."""
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                found.append((path.relative_to(TESTS), node.name, ast.get_docstring(node)))
    missing = [f"{path}::{name}" for path, name, doc in found if not doc]
    assert [] == missing
    assert len(found) > 5
