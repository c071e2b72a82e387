"""
Lifecycle into a JSON-lines file, side by side with eliot's FileDestination and OpenTelemetry.

Run: ``python bench/bench_jsonl.py [--quick]``. Each peer writes every record as one line
and flushes it before the call returns: alien-events 3 lines per lifecycle (created,
updated, stateChanged), eliot 3 messages (start, log, end), OpenTelemetry one span line at
the end (a simple JSON-lines exporter behind a SimpleSpanProcessor). Budget (decisions.md
section 6): alien-events at most 0.6 of eliot's.

A second table splits alien-events' figure into its parts, measured in the same run: the bus
delivering to a handler that does nothing, serializing the three changes, and the three
``write`` calls alone (of lines already made).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
from typing import TYPE_CHECKING

import eliot
import orjson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from _harness import check_budget, print_table, run_cases
from alien_events_api import AlienEvent
from alien_events_jsonl import JsonLinesHandler
from alien_events_sdk import EventBus, RecordingHandler, dump_change_line

if TYPE_CHECKING:
    from collections.abc import Sequence


class JsonLinesSpanExporter(SpanExporter):
    """Writes each finished span as one compact JSON line and flushes it."""

    def __init__(self, path: pathlib.Path) -> None:
        self._file = path.open("ab")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans, one line each, and flush."""
        for span in spans:
            self._file.write(orjson.dumps(orjson.loads(span.to_json())) + b"\n")
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        self._file.close()


ALIEN = "alien-events into JsonLinesHandler"
ELIOT = "eliot into FileDestination"
OTEL = "OpenTelemetry SDK, JSON-lines exporter"
BUS = "the bus, to a handler that does nothing"
SERIALIZE = "dump_change_line of the 3 changes"
WRITE = "3 os.write calls of lines already made"


def merge_best(best: dict[str, float], new: dict[str, float]) -> None:
    """Keep the lowest figure seen for each case."""
    for name, ns in new.items():
        best[name] = min(best.get(name, float("inf")), ns)


def alien_lifecycle() -> None:
    handle = AlienEvent.BuildingImage(image="api").emit()
    handle.update(AlienEvent.BuildingImage(image="api:2"))
    handle.complete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for smoke runs)")
    args = parser.parse_args()
    number, repeat = (2_000, 2) if args.quick else (10_000, 7)
    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as tmp:
        folder = pathlib.Path(tmp)
        handler = JsonLinesHandler(folder / "alien.jsonl")
        bus = EventBus([handler])

        eliot_file = (folder / "eliot.jsonl").open("ab")
        eliot.add_destinations(eliot.FileDestination(eliot_file))

        def eliot_action() -> None:
            with eliot.start_action(action_type="build-image", image="api") as action:
                action.log(message_type="progress", image="api:2")

        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(JsonLinesSpanExporter(folder / "otel.jsonl"))
        )
        tracer = provider.get_tracer("bench")

        def otel_span() -> None:
            with tracer.start_as_current_span("build-image") as span:
                span.set_attribute("image", "api:2")

        def ignore(change: object) -> None:
            """A handler that does nothing: what the bus costs on its own."""

        bare_bus = EventBus([ignore])
        recorder = RecordingHandler()
        with EventBus([recorder]):
            alien_lifecycle()
        changes = recorder.changes
        lines = [dump_change_line(change) for change in changes]
        fd = os.open(folder / "writes.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        def serialize_three() -> None:
            for change in changes:
                dump_change_line(change)

        def write_three() -> None:
            for line in lines:
                os.write(fd, line)

        results: dict[str, float] = {}
        parts: dict[str, float] = {}
        for _ in range(repeat):  # round by round, so machine noise hits every case alike
            with bus:
                merge_best(results, run_cases([(ALIEN, alien_lifecycle)], number=number, repeat=1))
            with bare_bus:
                merge_best(parts, run_cases([(BUS, alien_lifecycle)], number=number, repeat=1))
            merge_best(
                parts,
                run_cases(
                    [(SERIALIZE, serialize_three), (WRITE, write_three)],
                    number=number,
                    repeat=1,
                ),
            )
            merge_best(
                results,
                run_cases(
                    [(ELIOT, eliot_action), (OTEL, otel_span)],
                    number=number,
                    repeat=1,
                ),
            )
        os.close(fd)
        handler.close()
        provider.shutdown()
        eliot_file.close()
    print_table(
        "lifecycle into a JSON-lines file, every line flushed (ns per lifecycle)",
        results,
        ELIOT,
    )
    parts[ELIOT] = results[ELIOT]
    print_table("alien-events' figure in parts (ns per lifecycle)", parts, ELIOT)
    floor = parts[BUS] + parts[SERIALIZE] + parts[WRITE]
    print(f"  sum of the parts: {floor:,.0f} ns, {floor / results[ELIOT]:.2f} of eliot")
    ok = check_budget(
        "alien-events / eliot FileDestination",
        results[ALIEN],
        results[ELIOT],
        0.6,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
