"""The trace exporter process: OpenTelemetry spans are made and exported here, not in the
gateway.

The gateway sends each finished request as one compact *trace record* (plain data: the
caller's `traceparent`, the request's times and attributes, each stage's start and end,
each provider call with its usage) over a pipe, in batches; this process turns every
record into the same spans the gateway used to make itself (the request's server span,
one span per stage, a GenAI `chat` span per provider call) with the OpenTelemetry SDK,
and a BatchSpanProcessor exports them over OTLP/HTTP. Making and encoding about fourteen
spans per request in the SDK is about a millisecond of Python; here it neither holds the
gateway's GIL nor competes with its event loop, and at a lower CPU priority (nice 10) it
yields a core to request serving when cores are short. Nothing is sampled away.

Run by `Tracing` as `python -P <this file>`: it imports only the standard library, orjson
and OpenTelemetry (not turnout), so it starts fast. Protocol on stdin: the first line is the
exporter's configuration (JSON), every further line a JSON array of trace records. At the
end of input (the gateway stopped, or died) it exports what it holds and exits.

`build_spans` is also what the gateway calls in-process when given an exporter object
(tests pass an in-memory one), so both paths make the same spans.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# A trace record (all plain data, so it crosses the pipe as JSON):
#   {"traceparent": str | None, "tracestate": str | None,
#    "start": int, "end": int,                        # wall clock, ns
#    "attributes": {...},                             # the request span's
#    "error": str | None,                             # error type: span status ERROR
#    "stages": [[name, start, end], ...],             # one span each
#    "calls": [[provider, model, tier, start, end, {usage attributes} | None, outcome], ...]}
Record = Mapping[str, Any]


def build_spans(tracer: Any, record: Record) -> None:
    """The request's spans, with their real times, from one trace record."""
    from opentelemetry import trace
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind, Status, StatusCode

    carrier = {}
    if record.get("traceparent"):
        carrier["traceparent"] = record["traceparent"]
        if record.get("tracestate"):
            carrier["tracestate"] = record["tracestate"]
    parent = extract(carrier) if carrier else None
    span = tracer.start_span(
        "chat.completions",
        context=parent,
        kind=SpanKind.SERVER,
        attributes=record["attributes"],
        start_time=record["start"],
    )
    context = trace.set_span_in_context(span)
    for name, start, end in record["stages"]:
        tracer.start_span(name, context=context, start_time=start).end(end_time=end)
    for provider, model, tier, start, end, usage, outcome in record["calls"]:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "turnout.tier": tier,
        }
        if usage:
            attributes.update(usage)
        attributes["turnout.outcome"] = outcome
        chat = tracer.start_span(
            f"chat {model}",
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        chat.end(end_time=end)
    if record.get("error"):
        span.set_status(Status(StatusCode.ERROR, record["error"]))
    span.end(end_time=record["end"])


def _provider(config: Mapping[str, Any]) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": config["service_name"]}))
    exporter = OTLPSpanExporter(
        endpoint=config["endpoint"], headers=dict(config["headers"]), timeout=config["timeout"]
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65_536))
    return provider


def serve(lines: Any) -> int:
    """Read the configuration, then records, from `lines` (binary lines) until they end."""
    it = iter(lines)
    first = next(it, b"")
    if not first.strip():
        return 0
    provider = _provider(orjson.loads(first))
    tracer = provider.get_tracer("turnout.gateway")
    log = logging.getLogger("turnout.gateway.spans")
    try:
        for line in it:
            try:
                records: Sequence[Record] = orjson.loads(line)
            except ValueError:
                log.warning("trace exporter: a batch that is not JSON was skipped")
                continue
            for record in records:
                try:
                    build_spans(tracer, record)
                except Exception:  # one bad record must not stop the others
                    log.exception("trace exporter: a trace record was skipped")
    finally:
        provider.shutdown()  # exports what is left
    return 0


def main() -> int:
    # Ctrl-C in a terminal, or a service manager's SIGTERM, reaches the whole process
    # group: let the gateway stop first and close the pipe, so the spans it sent are still
    # exported. This process lives exactly as long as its input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Background work: where CPUs are short, the gateway (and whatever else serves
    # requests) goes first; the records wait in the pipe meanwhile.
    with contextlib.suppress(OSError):
        os.nice(10)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return serve(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
