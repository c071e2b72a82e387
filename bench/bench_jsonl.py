"""
Lifecycle into a JSON-lines file, side by side with eliot's FileDestination and OpenTelemetry.

Run: ``python bench/bench_jsonl.py [--quick]``. Each peer writes every record as one line
and flushes it before the call returns: alien-events 3 lines per lifecycle (created,
updated, stateChanged), eliot 3 messages (start, log, end), OpenTelemetry one span line at
the end (a simple JSON-lines exporter behind a SimpleSpanProcessor). Budget (decisions.md
section 6): alien-events at most 0.6 of eliot's.
"""

from __future__ import annotations

import argparse
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
from alien_events_sdk import EventBus

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for smoke runs)")
    args = parser.parse_args()
    number, repeat = (2_000, 2) if args.quick else (10_000, 7)
    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as tmp:
        folder = pathlib.Path(tmp)
        handler = JsonLinesHandler(folder / "alien.jsonl")
        bus = EventBus([handler])

        def alien_lifecycle() -> None:
            handle = AlienEvent.BuildingImage(image="api").emit()
            handle.update(AlienEvent.BuildingImage(image="api:2"))
            handle.complete()

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

        with bus:
            alien = run_cases(
                [("alien-events into JsonLinesHandler", alien_lifecycle)],
                number=number,
                repeat=repeat,
            )
        results = {
            **alien,
            **run_cases(
                [
                    ("eliot into FileDestination", eliot_action),
                    ("OpenTelemetry SDK, JSON-lines exporter", otel_span),
                ],
                number=number,
                repeat=repeat,
            ),
        }
        handler.close()
        provider.shutdown()
        eliot_file.close()
    print_table(
        "lifecycle into a JSON-lines file, every line flushed (ns per lifecycle)",
        results,
        "eliot into FileDestination",
    )
    ok = check_budget(
        "alien-events / eliot FileDestination",
        results["alien-events into JsonLinesHandler"],
        results["eliot into FileDestination"],
        0.6,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
