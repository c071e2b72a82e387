"""
The repository's copy of Alien's conformance files is the team's, unchanged.
"""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COPY = ROOT / "tests" / "conformance"
SHARED = ROOT.parent / "shared" / "conformance"


def test_copy_has_the_schemas_and_examples():
    """The copy holds the four schemas and the golden examples the wire tests read."""
    names = sorted(p.name for p in (COPY / "alien-schemas").iterdir())
    assert ["alienError.json", "alienEvent.json", "eventChange.json", "eventState.json"] == names
    assert (COPY / "wire-examples.jsonl").read_text(encoding="utf-8").count("\n") >= 20


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/conformance beside this checkout")
def test_copy_matches_the_shared_originals():
    """Every file of ../shared/conformance is in the copy, byte for byte."""
    for original in sorted(p for p in SHARED.rglob("*") if p.is_file()):
        copy = COPY / original.relative_to(SHARED)
        assert original.read_bytes() == copy.read_bytes(), copy
