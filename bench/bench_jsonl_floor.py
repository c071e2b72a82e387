"""
How fast the JSON-lines lifecycle could be without alien-events' layers: a stripped floor.

Run: ``python bench/bench_jsonl_floor.py [--quick]``. The floor writes the same three lines
as ``JsonLinesHandler`` (checked byte for byte before timing) from the same events, ids and
clock, but with no API/SDK split, no change records (the wire dicts are made directly), one
handler called without isolating its errors, and nothing else the bus does per change
except marking the delivery in a context variable. It is not a design: it shows how much of
alien-events' figure is the layers the other issues require, beside eliot, in one run.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import pathlib
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import eliot
import orjson

from _harness import alien_lifecycle, eliot_action, print_table, rounds_from_args, run_cases
from alien_events_api import AlienEvent, Event
from alien_events_jsonl import JsonLinesHandler
from alien_events_sdk import EventBus
from alien_events_sdk._ids import new_id
from alien_events_sdk._timestamps import format_micros
from alien_events_sdk._wire import event_to_dict

if TYPE_CHECKING:
    from collections.abc import Callable

_delivery: contextvars.ContextVar[object] = contextvars.ContextVar("floor", default=None)
_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


class FloorHandle:
    """The least a handle must hold: its id and its change counter."""

    __slots__ = ("id", "seq")

    def __init__(self, event_id: str) -> None:
        self.id = event_id
        self.seq = itertools.count(1)


class FloorWriter:
    """Writes each wire dict as one line under a lock, as ``JsonLinesHandler`` does."""

    def __init__(
        self,
        path: pathlib.Path,
        ids: Callable[[], str] = new_id,
        now_micros: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lock = threading.Lock()
        self.ids = ids
        self.now_micros = now_micros

    def deliver(self, wire: dict[str, Any]) -> None:
        """Mark the delivery, serialize, write."""
        token = _delivery.set(self)
        try:
            line = _dumps(wire, option=_NEWLINE)
            self.lock.acquire()
            try:
                os.write(self.fd, line)
            finally:
                self.lock.release()
        finally:
            _delivery.reset(token)

    def emit(self, event: Event) -> FloorHandle:
        """Create the event: its ``created`` line."""
        handle = FloorHandle(self.ids())
        self.deliver(
            {
                "type": "created",
                "id": handle.id,
                "parentId": None,
                "createdAt": format_micros(self.now_micros()),
                "event": event_to_dict(event),
                "state": "none",
                "seq": 0,
            }
        )
        return handle

    def update(self, handle: FloorHandle, event: Event) -> None:
        """Its ``updated`` line."""
        self.deliver(
            {
                "type": "updated",
                "id": handle.id,
                "updatedAt": format_micros(self.now_micros()),
                "event": event_to_dict(event),
                "seq": next(handle.seq),
            }
        )

    def complete(self, handle: FloorHandle) -> None:
        """Its ``stateChanged`` line."""
        self.deliver(
            {
                "type": "stateChanged",
                "id": handle.id,
                "updatedAt": format_micros(self.now_micros()),
                "newState": "success",
                "seq": next(handle.seq),
            }
        )


def check_same_lines(folder: pathlib.Path) -> None:
    """Fail unless the floor writes exactly the handler's lines, given the same id and clock."""
    fixed_id = "3f0c9a4e-0d5b-4c1e-9b7a-2d6f8e1a5c3b"
    moment = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    handler = JsonLinesHandler(folder / "check-real.jsonl")
    with EventBus([handler], ids=lambda *_: fixed_id, clock=lambda: moment):
        handle = AlienEvent.BuildingImage(image="api").emit()
        handle.update(AlienEvent.BuildingImage(image="api:2"))
        handle.complete()
    handler.close()
    floor = FloorWriter(folder / "check-floor.jsonl", lambda: fixed_id, lambda: micros)
    floor_handle = floor.emit(AlienEvent.BuildingImage(image="api"))
    floor.update(floor_handle, AlienEvent.BuildingImage(image="api:2"))
    floor.complete(floor_handle)
    real = (folder / "check-real.jsonl").read_bytes()
    made = (folder / "check-floor.jsonl").read_bytes()
    if real != made:
        msg = f"the floor writes other lines than JsonLinesHandler:\n{real!r}\n{made!r}"
        raise SystemExit(msg)


def main() -> int:
    number, repeat = rounds_from_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        folder = pathlib.Path(tmp)
        check_same_lines(folder)
        handler = JsonLinesHandler(folder / "alien.jsonl")
        bus = EventBus([handler])
        floor = FloorWriter(folder / "floor.jsonl")
        eliot_file = (folder / "eliot.jsonl").open("ab")
        eliot.add_destinations(eliot.FileDestination(eliot_file))

        def floor_lifecycle() -> None:
            handle = floor.emit(AlienEvent.BuildingImage(image="api"))
            floor.update(handle, AlienEvent.BuildingImage(image="api:2"))
            floor.complete(handle)

        results: dict[str, float] = {}
        for _ in range(repeat):
            with bus:
                rounds = run_cases(
                    [("alien-events into JsonLinesHandler", alien_lifecycle)],
                    number=number,
                    repeat=1,
                )
            rounds.update(
                run_cases(
                    [
                        ("the stripped floor (same lines)", floor_lifecycle),
                        ("eliot into FileDestination", eliot_action),
                    ],
                    number=number,
                    repeat=1,
                )
            )
            for name, ns in rounds.items():
                results[name] = min(results.get(name, float("inf")), ns)
        handler.close()
        eliot_file.close()
    print_table(
        "lifecycle into a JSON-lines file, and its stripped floor (ns per lifecycle)",
        results,
        "eliot into FileDestination",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
