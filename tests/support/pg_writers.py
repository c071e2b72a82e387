"""
Writer processes for the PostgreSQL plugin's multi-process tests (run as a script).

Both commands build their bus from the environment, as a real program would:
``ALIEN_EVENTS_HANDLERS=postgres``, ``ALIEN_EVENTS_POSTGRES_DSN`` and
``ALIEN_EVENTS_POSTGRES_TABLE``.

- ``publish LINES SEED``: read the wire lines of a recorded run from ``LINES``, shuffle them
  with ``SEED`` and deliver some twice, print ``ready``, wait for a line on stdin (so that
  several writers start together), ``publish`` every change, print ``published N``.
- ``emit SEED [ID PARENT EPOCH]``: emit nested trees as fast as it can, forever (until it is
  killed). After each emitting call returns, and after each ``transaction()`` batch ends, it
  writes the wire lines of the changes that call delivered to stdout (one ``write``): those
  changes are acknowledged. Given ``ID PARENT EPOCH``, it first takes over that event (an
  earlier writer's, left unfinished) with ``EventHandle.attach`` at ``EPOCH`` and ends it.
"""

from __future__ import annotations

import os
import random
import sys
import typing
from typing import Any

from alien_events_api import AlienError, AlienEvent, EventHandle, EventState, PushProgress
from alien_events_sdk import EventBus, dump_change_line, loads

if typing.TYPE_CHECKING:
    from collections.abc import Callable

BATCH_EVERY = 5
"""Every this many trees, the changes of one tree's pushes go in one ``transaction()``."""
DUPLICATES = 0.3
"""The share of the changes a publisher delivers a second time, at a random place."""


def _write_all(data: bytes) -> None:
    """Write ``data`` to stdout's file descriptor, unbuffered, all of it."""
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


class _Collector:
    """The last handler on the bus: the changes delivered since the last acknowledgement."""

    def __init__(self) -> None:
        self.changes: list[Any] = []

    def on_event_change(self, change: Any) -> None:
        self.changes.append(change)

    def acknowledge(self) -> None:
        """Write the collected changes' wire lines (their calls have returned), then forget them."""
        lines = b"".join(dump_change_line(change) for change in self.changes)
        self.changes.clear()
        if lines:
            _write_all(lines)


def shuffled_with_duplicates(changes: list[Any], seed: int) -> list[Any]:
    """The changes in a shuffled order, some of them twice."""
    rng = random.Random(seed)  # noqa: S311  (a test's reproducible order)
    delivered = list(changes)
    rng.shuffle(delivered)
    for change in rng.sample(changes, k=int(len(changes) * DUPLICATES)):
        delivered.insert(rng.randrange(len(delivered) + 1), change)
    return delivered


def publish_main(lines_path: str, seed: int) -> int:
    """Publish a recorded run's changes in an order of our own, once the parent says go."""
    with open(lines_path, encoding="utf-8") as lines:  # noqa: PTH123  (a plain script)
        changes = [loads(line) for line in lines if line.strip()]
    delivered = shuffled_with_duplicates(changes, seed)
    bus = EventBus.from_env()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    try:
        for change in delivered:
            bus.publish(change)
    finally:
        bus.close()
    sys.stdout.write(f"published {len(delivered)}\n")
    sys.stdout.flush()
    return 0


def _push(
    rng: random.Random, parent: EventHandle, image: str, acknowledge: Callable[[], None]
) -> None:
    """Push an image layer by layer, acknowledging after each call; some pushes fail."""
    layers = rng.randint(1, 3)
    push = AlienEvent.PushingImage(image=image).emit(EventState.STARTED, parent=parent)
    acknowledge()
    for layer in range(1, layers + 1):
        progress = PushProgress("Uploading", layer, layers, layer * 100, layers * 100)
        push.update(AlienEvent.PushingImage(image=image, progress=progress))
        acknowledge()
    if rng.random() < 0.2:
        push.fail(AlienError(code="PUSH_FAILED", message=f"pushing {image} failed", retryable=True))
    else:
        push.complete()
    acknowledge()


def _tree(rng: random.Random, number: int, handler: Any, ack: _Collector) -> EventHandle:
    """One nested tree: a stack, resources compiled and pushed; returns the unfinished root."""
    root = AlienEvent.BuildingStack(stack=f"stack-{number}").emit(EventState.STARTED)
    ack.acknowledge()
    for name in ("api", "worker")[: rng.randint(1, 2)]:
        resource = AlienEvent.BuildingResource(resource_name=name, resource_type="container")
        building = resource.emit(EventState.STARTED, parent=root)
        ack.acknowledge()
        compiling = AlienEvent.CompilingCode(language="rust").emit(
            EventState.STARTED, parent=building
        )
        ack.acknowledge()
        compiling.update(AlienEvent.CompilingCode(language="rust", progress="linking"))
        ack.acknowledge()
        compiling.complete()
        ack.acknowledge()
        if number % BATCH_EVERY == 0:
            with handler.transaction():  # durable, and acknowledged, when the block ends
                _push(rng, building, f"{name}:{number}", lambda: None)
            ack.acknowledge()
        else:
            _push(rng, building, f"{name}:{number}", ack.acknowledge)
        building.complete()
        ack.acknowledge()
    return root


def emit_main(seed: int, adopt: list[str]) -> int:
    """Emit nested trees until killed, acknowledging each change once its call returned."""
    rng = random.Random(seed)  # noqa: S311  (a test's reproducible program)
    bus = EventBus.from_env()
    (handler,) = bus.handlers
    ack = _Collector()
    bus.add_handler(ack)
    with bus:
        if adopt:
            event_id, parent_id, epoch = adopt
            taken = EventHandle.attach(event_id, parent_id or None, epoch=int(epoch))
            taken.update(AlienEvent.BuildingStack(stack=f"taken over at epoch {epoch}"))
            ack.acknowledge()
            taken.complete()
            ack.acknowledge()
        number = 0
        while True:
            number += 1
            root = _tree(rng, number, handler, ack)
            if number % 3:  # others are left running, for a later writer to take over
                root.complete()
                ack.acknowledge()


def main(argv: list[str]) -> int:
    """Run the command that ``argv`` names."""
    command, *args = argv
    if command == "publish":
        return publish_main(args[0], int(args[1]))
    if command == "emit":
        return emit_main(int(args[0]), args[1:])
    sys.stderr.write(f"unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
