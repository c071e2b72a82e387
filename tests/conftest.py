"""
Shared fixtures: every test starts with no process default bus and strict mode off.
"""

from __future__ import annotations

import pytest

from alien_events_api import set_strict
from alien_events_sdk import EventBus, RecordingHandler, set_default_bus


@pytest.fixture(autouse=True)
def _reset_process_state():
    """Restore the process-wide settings (default bus, strict mode) after each test."""
    previous_bus = set_default_bus(None)
    previous_strict = set_strict(False)
    yield
    set_default_bus(previous_bus)
    set_strict(previous_strict)


@pytest.fixture(name="recorder")
def _recorder() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture(name="bus")
def _bus(recorder: RecordingHandler) -> EventBus:
    """A bus with one recording handler (Rust's ``with_test_bus``)."""
    return EventBus([recorder])
