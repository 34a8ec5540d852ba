"""One request, observed: what the gateway learns about it as it goes, turned at the end
into the log line, the metrics, the trace's attributes and the stored record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..governance import detail_summary
from ._stages import Stages


@dataclass
class Observation:
    request_id: str
    stages: Stages
    started: float  # monotonic
    traced: bool = False
    # The caller's (`traceparent`, `tracestate`) headers, when traced; parsed with the spans.
    parent: tuple[str | None, str | None] | None = None
    started_ns: int = 0  # wall clock, for the request span made at the end
    # Provider calls for `chat` spans: (provider, model, tier, start ns, end ns, usage, outcome)
    calls: list[tuple[str, str, str, int, int, Any, str]] = field(default_factory=list)
    tenant: str = "-"
    user: str | None = None
    route: str = "-"
    pattern: str = "-"
    start_tier: str = "-"
    tier: str = "-"
    model: str = "-"
    attempts: list[Any] = field(default_factory=list)  # cascade Attempt records
    outcome: str = "error"
    error_type: str | None = None
    status: int = 200
    modality: str = "text"
    image_details: tuple[str, ...] = ()
    image_note: str | None = None
    cost_micros: int = 0
    ttft_s: float | None = None
    retrieved: list[str] = field(default_factory=list)
    retrieval_note: str | None = None  # the rag decision: "4 items; why=..." or "skipped; ..."
    gold: tuple[str, ...] = ()
    recall_k: int | None = None
    prompt: str | None = None  # only when the tenant opted in
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def image_detail(self) -> str:
        return detail_summary(self.image_details)

    @property
    def detail_level(self) -> str | None:
        """One label for metrics: the level, or `mixed`."""
        levels = set(self.image_details)
        return None if not levels else (levels.pop() if len(levels) == 1 else "mixed")

    @property
    def gold_hit(self) -> bool | None:
        if not self.gold or self.pattern != "rag":
            return None  # recall is only defined where something was retrieved
        k = self.recall_k or len(self.retrieved)
        return any(g in self.retrieved[:k] for g in self.gold)

    def tokens(self) -> dict[str, int]:
        out = {"text": 0, "image": 0, "audio": 0, "cached": 0, "output": 0}
        for a in self.attempts:
            if a.usage is not None:
                out["text"] += a.usage.text_input_tokens
                out["image"] += a.usage.image_input_tokens
                out["audio"] += a.usage.audio_input_tokens
                out["cached"] += a.usage.cached_input_tokens
                out["output"] += a.usage.output_tokens + a.usage.audio_output_tokens
        return out

    def escalations(self) -> list[str]:
        return [a.reason for a in self.attempts if a.outcome == "escalated" and a.reason]

    def summary(self, latency_s: float) -> dict[str, Any]:
        """The log line's fields (and the metrics' input)."""
        hit = self.gold_hit
        return {
            "request_id": self.request_id,
            "tenant": self.tenant,
            "user": self.user,
            "route": self.route,
            "pattern": self.pattern,
            "start": self.start_tier,
            "tier": self.tier,
            "tiers": [a.tier for a in self.attempts if a.outcome != "skipped"],
            "model": self.model,
            "attempts": [a.label() for a in self.attempts],
            "escalations": self.escalations(),
            "outcome": self.outcome,
            "error_type": self.error_type,
            "status": self.status,
            "modality": self.modality,
            "images": len(self.image_details),
            "image_detail": self.image_detail,
            "image_detail_level": self.detail_level,
            "image_cap": self.image_note,
            "tokens": self.tokens(),
            "cost_micros": self.cost_micros,
            "cost_usd": f"{self.cost_micros / 1e6:.6f}",
            "latency_ms": round(latency_s * 1000, 3),
            "ttft_ms": None if self.ttft_s is None else round(self.ttft_s * 1000, 3),
            "stages_ms": self.stages.milliseconds(),
            "retrieval": self.retrieval_note,
            "retrieved": len(self.retrieved),
            "retrieved_ids": self.retrieved,
            "gold_hit": hit,
            **({"prompt": self.prompt} if self.prompt is not None else {}),
        }
