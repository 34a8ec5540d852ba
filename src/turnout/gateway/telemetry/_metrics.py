"""Prometheus metrics, each app with its own registry. Label sets are bounded: routes,
patterns, models, tiers, stages and reasons come from configuration; tenants from the
admin; never request or user ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Live(Collector):
    """Gauges read at scrape time: circuit breakers and index freshness."""

    def __init__(
        self,
        breakers: Callable[[], dict[str, str]],
        freshness: Callable[[], Iterable[tuple[str, float]]] | None,
        budgets: Callable[[], Iterable[tuple[str, str, float]]] | None,
    ) -> None:
        self.breakers = breakers
        self.freshness = freshness
        self.budgets = budgets

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "turnout_circuit_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
            labels=["deployment"],
        )
        for deployment, value in self.breakers().items():
            state.add_metric([deployment], {"closed": 0, "half_open": 1, "open": 2}.get(value, 0))
        yield state
        if self.freshness is not None:
            age = GaugeMetricFamily(
                "turnout_index_freshness_age_seconds",
                "Age of the oldest change not yet indexed, per collection.",
                labels=["collection"],
            )
            for collection, seconds in self.freshness():
                age.add_metric([collection], seconds)
            yield age
        if self.budgets is not None:
            left = GaugeMetricFamily(
                "turnout_budget_remaining_usd",
                "Budget left per tenant and period (day, month), reservations included.",
                labels=["tenant", "period"],
            )
            for tenant, period, usd in self.budgets():
                left.add_metric([tenant, period], usd)
            yield left


class Metrics:
    def __init__(
        self,
        breakers: Callable[[], dict[str, str]],
        freshness: Callable[[], Iterable[tuple[str, float]]] | None = None,
        budgets: Callable[[], Iterable[tuple[str, str, float]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "turnout_requests",
            "Requests by route, pattern, answering model and outcome.",
            ["route", "pattern", "model", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "turnout_request_errors", "Failed requests by route and error type.",
            ["route", "error_type"], registry=r,
        )  # fmt: skip
        self.stages = Histogram(
            "turnout_stage_seconds", "Time per request stage.", ["stage"],
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "turnout_time_to_first_token_seconds", "Time to the first token, by route.",
            ["route"], buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "turnout_tokens",
            "Tokens by modality (text, image, audio input; output) and image detail level.",
            ["modality", "detail"],
            registry=r,
        )
        self.cost = Counter(
            "turnout_cost_usd", "Spend in USD by tenant and pattern.",
            ["tenant", "pattern"], registry=r,
        )  # fmt: skip
        self.escalations = Counter(
            "turnout_escalations", "Climbs to a stronger tier, by route and reason.",
            ["route", "reason"], registry=r,
        )  # fmt: skip
        self.feedback = Counter(
            "turnout_feedback", "User feedback by request modality and rating (up, down).",
            ["modality", "rating"], registry=r,
        )  # fmt: skip
        self.judged = Histogram(
            "turnout_judge_score",
            "Sampled judge scores (faithfulness, relevance, grounding) by route.",
            ["route", "metric"],
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.judge_failures = Counter(
            "turnout_judge_failures", "Judgings that failed or timed out, by route.",
            ["route", "status"], registry=r,
        )  # fmt: skip
        self.gold = Counter(
            "turnout_retrieval_gold", "Requests naming gold ids: whether one was in the top k.",
            ["route", "hit"], registry=r,
        )  # fmt: skip
        self.searches = Counter(
            "turnout_searches",
            "Searches (/v1/search) by collection, query kind (text, image, both) and outcome.",
            ["collection", "query", "outcome"],
            registry=r,
        )
        self.search_stages = Histogram(
            "turnout_search_seconds", "Time per search stage (embed, search, total).",
            ["stage"], buckets=_LATENCY, registry=r,
        )  # fmt: skip
        r.register(_Live(breakers, freshness, budgets))

    def observe_search(
        self, collection: str, query: str, outcome: str, timings_ms: dict[str, float]
    ) -> None:
        self.searches.labels(collection, query, outcome).inc()
        for stage, ms in timings_ms.items():
            self.search_stages.labels(stage).observe(ms / 1000)

    def observe(self, record: dict[str, Any]) -> None:
        route, model = record["route"], record.get("model") or "-"
        self.requests.labels(route, record["pattern"], model, record["outcome"]).inc()
        if record.get("error_type"):
            self.errors.labels(route, record["error_type"]).inc()
        for stage, ms in record["stages_ms"].items():
            self.stages.labels(stage).observe(ms / 1000)
        if record.get("ttft_ms") is not None:
            self.ttft.labels(route).observe(record["ttft_ms"] / 1000)
        tokens = record["tokens"]
        detail = record.get("image_detail_level") or "-"
        if tokens["text"]:
            self.tokens.labels("text", "-").inc(tokens["text"])
        if tokens["image"]:
            self.tokens.labels("image", detail).inc(tokens["image"])
        if tokens["audio"]:
            self.tokens.labels("audio", "-").inc(tokens["audio"])
        if tokens["output"]:
            self.tokens.labels("output", "-").inc(tokens["output"])
        if record["cost_micros"]:
            self.cost.labels(record["tenant"], record["pattern"]).inc(record["cost_micros"] / 1e6)
        for reason in record["escalations"]:
            self.escalations.labels(route, reason).inc()
        if record.get("gold_hit") is not None:
            self.gold.labels(route, "yes" if record["gold_hit"] else "no").inc()
