"""Telemetry for the gateway: begin an observation when a request arrives, finish it when
the answer (or the error) has gone out; finishing writes the log line, the metrics, the
span's attributes and the stored record, each only if it is on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from turnout.core import Settings

from ..governance import Database
from ._metrics import Metrics
from ._observation import Observation
from ._recorder import RequestRecorder
from ._stages import Stages
from ._tracing import Tracing, trace_headers, usage_attributes

log = logging.getLogger("turnout.gateway.requests")


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        breakers: Callable[[], dict[str, str]],
        *,
        freshness: Callable[[], Iterable[tuple[str, float]]] | None = None,
        budgets: Callable[[], Iterable[tuple[str, str, float]]] | None = None,
        span_exporter: Any = None,
    ) -> None:
        config = settings.telemetry
        self.tracing = Tracing(config, span_exporter)
        self.metrics = Metrics(breakers, freshness, budgets) if config.metrics else None
        self.recorder = RequestRecorder(db) if config.record_requests else None

    async def start(self) -> None:
        if self.recorder is not None:
            self.recorder.start()
        self.tracing.start()

    async def stop(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
        self.tracing.shutdown()

    def begin(self, request_id: str, headers: Mapping[str, str]) -> Observation:
        if not self.tracing.enabled:
            return Observation(request_id, Stages(), time.monotonic())
        # Only what the spans need is kept now (the caller's trace headers, as they came);
        # the spans themselves are made, with their real times, after the response has
        # gone, and not in this process when exporting over OTLP (see _emit).
        return Observation(
            request_id,
            Stages(traced=True),
            time.monotonic(),
            traced=True,
            parent=trace_headers(headers),
            started_ns=time.time_ns(),
        )

    def finish(self, obs: Observation) -> None:
        """Record the request. The latency is taken now; the log line, metrics, spans and
        record are made just after, once the response has been handed to the server, so
        none of it sits between the answer and the client."""
        latency = time.monotonic() - obs.started
        try:
            asyncio.get_running_loop().call_soon(self._emit, obs, latency)
        except RuntimeError:  # no event loop (a library caller): do it now
            self._emit(obs, latency)

    def _emit(self, obs: Observation, latency: float) -> None:
        summary = obs.summary(latency)
        if log.isEnabledFor(logging.INFO):
            log.info(orjson.dumps(summary).decode())
        if self.metrics is not None:
            self.metrics.observe(summary)
        if self.recorder is not None:
            self.recorder.add(_row(obs, summary))
        if obs.traced:
            self.tracing.export(_trace_record(obs, summary, latency))


def _row(obs: Observation, summary: dict[str, Any]) -> dict[str, Any]:
    tokens = summary["tokens"]
    hit = summary["gold_hit"]
    return {
        "request_id": obs.request_id,
        "tenant_id": obs.tenant,
        "user_id": obs.user,
        "route": obs.route,
        "pattern": obs.pattern,
        "start_tier": obs.start_tier,
        "tier": obs.tier,
        "model": obs.model,
        "attempts": len([a for a in obs.attempts if a.outcome != "skipped"]),
        "escalations": ",".join(summary["escalations"])[:200],
        "outcome": obs.outcome,
        "error_type": obs.error_type,
        "status": obs.status,
        "modality": obs.modality,
        "image_count": len(obs.image_details),
        "image_detail": obs.image_detail[:64],
        "text_tokens": tokens["text"],
        "image_tokens": tokens["image"],
        "audio_tokens": tokens["audio"],
        "output_tokens": tokens["output"],
        "cost_micros": obs.cost_micros,
        "latency_ms": round(summary["latency_ms"]),
        "ttft_ms": None if summary["ttft_ms"] is None else round(summary["ttft_ms"]),
        "stages": orjson.dumps(summary["stages_ms"]).decode(),
        "retrieved": orjson.dumps(obs.retrieved).decode(),
        "gold_hit": None if hit is None else int(hit),
        "recall_k": obs.recall_k,
        "created_at": obs.created_at,
    }


def _trace_record(obs: Observation, summary: dict[str, Any], latency: float) -> dict[str, Any]:
    """The request's spans as plain data (see `_span_process.build_spans`)."""
    tokens = summary["tokens"]
    traceparent, tracestate = obs.parent or (None, None)
    return {
        "traceparent": traceparent,
        "tracestate": tracestate,
        "start": obs.started_ns,
        "end": obs.started_ns + int(latency * 1e9),
        "attributes": {
            "turnout.request_id": obs.request_id,
            "turnout.tenant": obs.tenant,
            "turnout.route": obs.route,
            "turnout.pattern": obs.pattern,
            "turnout.tier": obs.tier,
            "turnout.outcome": obs.outcome,
            "turnout.cost_usd": summary["cost_usd"],
            "turnout.images": summary["images"],
            "turnout.image_detail": summary["image_detail"],
            "gen_ai.request.model": obs.route,
            "gen_ai.response.model": obs.model,
            "gen_ai.usage.input_tokens": tokens["text"] + tokens["image"] + tokens["audio"],
            "gen_ai.usage.output_tokens": tokens["output"],
            "gen_ai.usage.image.input_tokens": tokens["image"],
            "gen_ai.usage.text.input_tokens": tokens["text"],
            "gen_ai.usage.audio.input_tokens": tokens["audio"],
            "http.response.status_code": obs.status,
        },
        "error": obs.error_type,
        "stages": obs.stages.intervals or [],
        "calls": [
            (p, m, tier, start, end, None if u is None else usage_attributes(u), outcome)
            for p, m, tier, start, end, u, outcome in obs.calls
        ],
    }
