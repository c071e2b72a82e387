"""
Lifecycle cost (emit, one update, complete) side by side with OpenTelemetry and eliot.

Run: ``python bench/bench_lifecycle.py [--quick]``. Prints ns per lifecycle and ratios, and
checks the budgets of decisions.md section 6. Not a test: timings on shared machines are noisy.
"""

from __future__ import annotations

import sys

import eliot
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _harness import (
    alien_lifecycle,
    check_budget,
    eliot_action,
    print_table,
    rounds_from_args,
    run_cases,
)
from alien_events_sdk import EventBus, RecordingHandler


def main() -> int:
    number, repeat = rounds_from_args(__doc__, full_number=20_000)

    recorder = RecordingHandler()
    bus = EventBus([recorder])

    def alien_sdk_lifecycle() -> None:
        if len(recorder.changes) > 30_000:
            recorder.changes.clear()
        alien_lifecycle()

    otel_api_tracer = otel_trace.NoOpTracerProvider().get_tracer("bench")

    def otel_api_span() -> None:
        with otel_api_tracer.start_as_current_span("build-image") as span:
            span.set_attribute("image", "api:2")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_sdk_tracer = provider.get_tracer("bench")

    def otel_sdk_span() -> None:
        with otel_sdk_tracer.start_as_current_span("build-image") as span:
            span.set_attribute("image", "api:2")
        if len(exporter.get_finished_spans()) > 10_000:
            exporter.clear()

    eliot_messages: list[dict[str, object]] = []
    eliot.add_destinations(eliot_messages.append)

    def eliot_into_list() -> None:
        eliot_action()
        if len(eliot_messages) > 30_000:
            eliot_messages.clear()

    def alien_sdk() -> None:
        bus.run(alien_sdk_lifecycle)

    with bus:
        sdk_cases = [("alien-events SDK, in-memory handler", alien_sdk_lifecycle)]
        sdk_results = run_cases(sdk_cases, number=number, repeat=repeat)
    results = run_cases(
        [
            ("alien-events API, no SDK", alien_lifecycle),
            ("OpenTelemetry API, no-op span", otel_api_span),
            ("OpenTelemetry SDK, in-memory exporter", otel_sdk_span),
            ("eliot action into a list", eliot_into_list),
        ],
        number=number,
        repeat=repeat,
    )
    results = {**sdk_results, **results}
    del alien_sdk
    print_table(
        "lifecycle: emit + update + complete (ns per lifecycle)",
        results,
        "eliot action into a list",
    )
    ok = check_budget(
        "API no-op / OpenTelemetry API no-op span",
        results["alien-events API, no SDK"],
        results["OpenTelemetry API, no-op span"],
        0.25,
    )
    ok &= check_budget(
        "SDK in-memory / eliot into a list",
        results["alien-events SDK, in-memory handler"],
        results["eliot action into a list"],
        0.5,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
