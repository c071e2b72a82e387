"""
Shared fixtures: every test starts with no process default bus and strict mode off.
"""

from __future__ import annotations

import signal

import pytest

from alien_events_api import set_strict
from alien_events_sdk import EventBus, RecordingHandler, set_default_bus


def pytest_configure(config: pytest.Config) -> None:
    """Let child processes take Ctrl-C even when the suite runs in the background.

    A shell starts background jobs with SIGINT ignored, children inherit that, and the tests
    that interrupt a child (``demo``, ``view --follow``) would wait in vain. A Python-level
    handler here is reset to the default in every child at exec.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
