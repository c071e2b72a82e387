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

import os
import pathlib
import sys
import tempfile
from typing import TYPE_CHECKING

import eliot
import orjson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from _harness import (
    alien_lifecycle,
    check_budget,
    eliot_action,
    merge_best,
    print_table,
    rounds_from_args,
    run_cases,
)
from alien_events_jsonl import JsonLinesHandler
from alien_events_sdk import EventBus, RecordingHandler, dump_change_line

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


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


def main() -> int:
    number, repeat = rounds_from_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as tmp:
        folder = pathlib.Path(tmp)
        handler = JsonLinesHandler(folder / "alien.jsonl")
        bus = EventBus([handler])

        eliot_file = (folder / "eliot.jsonl").open("ab")
        eliot.add_destinations(eliot.FileDestination(eliot_file))

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

        def one_round(best: dict[str, float], cases: list[tuple[str, Callable[[], None]]]) -> None:
            merge_best(best, run_cases(cases, number=number, repeat=1))

        for _ in range(repeat):  # round by round, so machine noise hits every case alike
            with bus:
                one_round(results, [(ALIEN, alien_lifecycle)])
            with bare_bus:
                one_round(parts, [(BUS, alien_lifecycle)])
            one_round(parts, [(SERIALIZE, serialize_three), (WRITE, write_three)])
            one_round(results, [(ELIOT, eliot_action), (OTEL, otel_span)])
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
