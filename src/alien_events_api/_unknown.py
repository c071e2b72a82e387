"""
``UnknownEvent``: an event of a type this process does not know, kept whole so it can be passed on.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import attrs

from alien_events_api._event import Event


@typing.final
@attrs.frozen(eq=True)
class UnknownEvent(Event):
    """
    An event read from the wire whose ``"type"`` tag is not registered here.

    A newer producer must not break an older reader: the payload is kept as it came
    (``data`` holds every key but ``"type"``) and written back out unchanged.
    """

    tag: str
    data: Mapping[str, Any] = attrs.field(factory=dict)
