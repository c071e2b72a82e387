"""
A short demo: a simulated build and deploy, with nested events and live updates, on the terminal.

Run it with ``python -m alien_events_sdk.demo``. The full console renderer comes with the
``alien-events-console`` plugin; this one prints a line per change, indented by depth.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from alien_events_api import (
    AlienEvent,
    Created,
    EventChange,
    EventState,
    PushProgress,
    StateChanged,
    Updated,
    alien_event,
    carry_context,
    current_event,
)
from alien_events_sdk import EventBus, RecordingHandler


class LinePrinter:
    """Prints each change as one indented line; keeps only the depths of open events."""

    def __init__(self, out: TextIO, *, started_at: float) -> None:
        self._out = out
        self._depth: dict[str, int] = {}
        self._names: dict[str, str] = {}
        self._started_at = started_at
        self._lock = threading.Lock()

    def _line(self, depth: int, text: str) -> None:
        elapsed = time.monotonic() - self._started_at
        with self._lock:
            self._out.write(f"[{elapsed:5.2f}s] {'  ' * depth}{text}\n")
            self._out.flush()

    def on_event_change(self, change: EventChange) -> None:
        """Print the change."""
        if isinstance(change, Created):
            depth = 0 if change.parent_id is None else self._depth.get(change.parent_id, 0) + 1
            if change.state is EventState.STARTED:
                self._depth[change.id] = depth
                self._names[change.id] = type(change.event).__name__
            mark = "▶" if change.state is EventState.STARTED else "•"
            self._line(depth, f"{mark} {describe(change.event)}")
        elif isinstance(change, Updated):
            depth = self._depth.get(change.id, 0) + 1
            self._line(depth, f"↻ {describe(change.event)}")
        elif isinstance(change, StateChanged):
            depth = self._depth.pop(change.id, 0)
            name = self._names.pop(change.id, change.id[:8])
            if change.new_state is EventState.FAILED and change.error is not None:
                self._line(depth, f"✗ {name} failed: {change.error}")
            elif change.new_state is EventState.SUCCESS:
                self._line(depth, f"✓ {name} done")


def describe(event: object) -> str:
    """Return a short human text for an event."""
    if isinstance(event, AlienEvent.PushingImage) and event.progress is not None:
        p = event.progress
        return f"pushing {event.image}: layer {p.layers_uploaded}/{p.total_layers}"
    fields = ", ".join(f"{k}={v!r}" for k, v in vars_of(event).items())
    return f"{type(event).__name__}({fields})"


def vars_of(event: object) -> dict[str, object]:
    """Return an attrs event's fields as a dict."""
    return {
        name: getattr(event, name)
        for name in getattr(event, "__slots__", ())
        if name != "__weakref__"
    }


def push_image(image: str, layers: int, pause: float) -> None:
    """Push an image layer by layer, updating one event as it goes."""
    handle = AlienEvent.PushingImage(image=image).emit(EventState.STARTED)
    for layer in range(1, layers + 1):
        time.sleep(pause)
        progress = PushProgress("Uploading", layer, layers, layer * 1024, layers * 1024)
        handle.update(AlienEvent.PushingImage(image=image, progress=progress))
    handle.complete()


@alien_event(
    lambda name: AlienEvent.BuildingResource(resource_name=name, resource_type="container")
)
def build_resource(name: str, pause: float) -> None:
    """Compile and push one resource."""
    with AlienEvent.CompilingCode(language="rust").in_scope():
        time.sleep(pause)
        current_event().update(AlienEvent.CompilingCode(language="rust", progress="linking"))
    push_image(f"{name}:latest", 3, pause)


def deploy(pause: float) -> None:
    """Deploy with one failed attempt that is retried."""
    for attempt in (1, 2):
        try:
            with AlienEvent.DeployingStack(stack_name=f"my-stack (attempt {attempt})").in_scope():
                time.sleep(pause)
                check_load_balancer(ready=attempt > 1)
        except TimeoutError:
            continue
        else:
            return


def check_load_balancer(*, ready: bool) -> None:
    """Fail the way a real deploy does while the load balancer warms up."""
    if not ready:
        msg = "load balancer not ready yet"
        raise TimeoutError(msg)


def run_demo(out: TextIO, *, pause: float) -> list[EventChange]:
    """Run the simulated build and deploy; return every change it made."""
    recorder = RecordingHandler()
    bus = EventBus([LinePrinter(out, started_at=time.monotonic()), recorder])

    def main() -> None:
        with AlienEvent.BuildingStack(stack="my-stack").in_scope():
            with ThreadPoolExecutor(max_workers=2) as pool:
                jobs = [
                    pool.submit(carry_context(build_resource), n, pause) for n in ("api", "worker")
                ]
                for job in jobs:
                    job.result()
            deploy(pause)
        AlienEvent.Finished().emit(EventState.SUCCESS)

    bus.run(main)
    return recorder.changes


def main(argv: list[str] | None = None) -> int:
    """Run the demo from the command line."""
    parser = argparse.ArgumentParser(prog="python -m alien_events_sdk.demo", description=__doc__)
    parser.add_argument("--pause", type=float, default=0.15, help="seconds per simulated step")
    args = parser.parse_args(argv)
    changes = run_demo(sys.stdout, pause=args.pause)
    print(f"\n{len(changes)} changes delivered.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
