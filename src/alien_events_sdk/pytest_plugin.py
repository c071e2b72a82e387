"""
The pytest plugin of alien-events (registered through ``pytest11``): the ``alien_events`` fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from alien_events_sdk.testing import CapturedEvents, capture_events

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(name="alien_events")
def alien_events_fixture() -> Iterator[CapturedEvents]:
    """
    Capture every event the test emits (its context, asyncio tasks, and plain threads).

    Use ``alien_events.changes``, ``.tree``, ``.normalised()``, ``.shape()``, ``.events()``.
    """
    with capture_events() as captured:
        yield captured
