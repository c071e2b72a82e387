"""
Cost of serializing a change (the hot path of file and database handlers), beside ``json.dumps``.

Run: ``python bench/bench_wire.py [--quick]``. Compares, per change:
``json.dumps`` of an equivalent, already-built dict (the reference), ``orjson.dumps`` of it,
our ``dumps(change)`` (build the wire dict + orjson), our ``to_dict`` + ``json.dumps`` (what
the SDK would cost without orjson), and ``loads``.
"""

from __future__ import annotations

import json
import sys

import orjson

from _harness import print_table, rounds_from_args, run_cases
from alien_events_api import AlienEvent, Created, EventState, PushProgress, StateChanged, Updated
from alien_events_sdk import dumps, loads, to_dict
from alien_events_sdk._wire import dump_change_line

MICROS = 1_764_349_786_305_176


def sample_changes() -> dict[str, object]:
    """One change of each kind, as the bus makes them."""
    event = AlienEvent.PushingImage(
        image="api:latest", progress=PushProgress("Uploading", 2, 5, 2048, 5120)
    )
    return {
        "created": Created.unchecked(
            "43d9b9cd-62a2-4eb8-b2c9-d6325da39208",
            "bb5faa98-8690-43fb-9b78-3af8621e9d77",
            MICROS,
            event,
            EventState.STARTED,
            None,
            0,
        ),
        "updated": Updated.unchecked("43d9b9cd-62a2-4eb8-b2c9-d6325da39208", MICROS + 10, event, 1),
        "stateChanged": StateChanged.unchecked(
            "43d9b9cd-62a2-4eb8-b2c9-d6325da39208", MICROS + 20, EventState.SUCCESS, None, 2
        ),
    }


def main() -> int:
    number, repeat = rounds_from_args(__doc__, full_number=20_000)
    for kind, change in sample_changes().items():
        prebuilt = to_dict(change)
        text = dumps(change)
        results = run_cases(
            [
                ("json.dumps of an equivalent dict", lambda d=prebuilt: json.dumps(d)),
                ("orjson.dumps of an equivalent dict", lambda d=prebuilt: orjson.dumps(d)),
                ("alien-events dumps(change)", lambda c=change: dumps(c)),
                ("alien-events dump_change_line(change)", lambda c=change: dump_change_line(c)),
                ("alien-events to_dict + json.dumps", lambda c=change: json.dumps(to_dict(c))),
                ("alien-events loads(text)", lambda t=text: loads(t)),
            ],
            number=number,
            repeat=repeat,
        )
        print_table(
            f"serializing a {kind} change (ns per change)",
            results,
            "json.dumps of an equivalent dict",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
