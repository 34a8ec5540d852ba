"""OpenTelemetry traces: a span per request (continuing the client's `traceparent`), a
span per stage, and a `chat` span per provider attempt with the GenAI semantic
conventions, per-modality usage included. Off unless `telemetry.otlp_endpoint` is set;
an endpoint that does not answer costs a logged export error, never a request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from turnout.core import ConfigError, TelemetrySettings


class Tracing:
    def __init__(self, settings: TelemetrySettings, exporter: Any = None) -> None:
        """`exporter`: an OpenTelemetry SpanExporter (tests pass an in-memory one)."""
        self.tracer: Any = None
        self._provider: Any = None
        if exporter is None and settings.otlp_endpoint is None:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
        if exporter is None:
            endpoint = settings.otlp_endpoint or ""
            if urlparse(endpoint).scheme not in ("http", "https"):
                raise ConfigError(
                    f"telemetry.otlp_endpoint: {endpoint!r} is not an http(s) URL "
                    "(e.g. http://collector:4318/v1/traces)"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=endpoint, headers=dict(settings.otlp_headers), timeout=5
            )
            provider.add_span_processor(BatchSpanProcessor(exporter))  # exports off-thread
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        self._provider = provider
        self.tracer = provider.get_tracer("turnout.gateway")

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def parent(self, headers: Mapping[str, str]) -> Any:
        """The caller's trace context, from its `traceparent` header (if any)."""
        from opentelemetry.propagate import extract

        carrier = {k: v for k, v in headers.items() if k in ("traceparent", "tracestate")}
        return extract(carrier)

    def request_span(self, parent: Any, request_id: str, start_ns: int) -> tuple[Any, Any]:
        """The request's server span, child of the caller's trace, started at `start_ns`,
        and the context its children start in; the caller ends it."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        span = self.tracer.start_span(
            "chat.completions",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"turnout.request_id": request_id},
            start_time=start_ns,
        )
        return span, trace.set_span_in_context(span)

    def start_chat_span(
        self,
        parent: Any,
        provider: str,
        model: str,
        attributes: dict[str, Any],
        start_time: int | None = None,
    ) -> Any:
        from opentelemetry.trace import SpanKind

        return self.tracer.start_span(
            f"chat {model}",
            context=parent,
            start_time=start_time,
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                **attributes,
            },
        )

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def usage_attributes(usage: Any) -> dict[str, int]:
    """GenAI usage attributes, per modality, from a turnout Usage."""
    return {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens + usage.audio_output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_input_tokens,
        "gen_ai.usage.text.input_tokens": usage.text_input_tokens,
        "gen_ai.usage.image.input_tokens": usage.image_input_tokens,
        "gen_ai.usage.audio.input_tokens": usage.audio_input_tokens,
        "gen_ai.usage.text.output_tokens": usage.output_tokens,
        "gen_ai.usage.audio.output_tokens": usage.audio_output_tokens,
    }
