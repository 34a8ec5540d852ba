"""Generated traffic for the dashboard: tenants, requests, their ledger attempts, feedback
and judgments, written straight into the ledger database in bulk.

Shared by the tests (which recompute every aggregate from the returned rows) and by
`benches/dashboard.py` (100,000 requests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import insert

from turnout.gateway.governance import Database, Policy
from turnout.gateway.governance._schema import feedback, judgments, ledger, requests, tenants

TENANTS = {"acme": Decimal("40"), "globex": Decimal("25"), "initech": Decimal("10"), "hooli": None}
TIERS = ("cheap", "mid", "strong")
MODELS = {"cheap": "gpt-4.1-mini", "mid": "gemini-2.5-flash", "strong": "claude-sonnet-4"}
REASONS = ("empty", "refusal", "json_schema", "judge")
STAGES = ("parse", "auth", "admission", "route", "reserve", "embed", "retrieve", "attempt_1")
MODALITIES = ("text", "image", "audio", "document")
CHUNK = 5_000
CENT = Decimal("0.01")


@dataclass
class Traffic:
    tenants: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    judgments: list[dict[str, Any]] = field(default_factory=list)


def daily_budget(tenant: str, n: int) -> Decimal | None:
    """The tenant's daily budget, scaled with the traffic so that spend comes near it."""
    base = TENANTS[tenant]
    return None if base is None else max(Decimal("0.01"), (base * n / 100_000).quantize(CENT))


def generate(n: int, *, now: datetime, days: int = 14, seed: int = 7) -> Traffic:
    rng = random.Random(seed)
    out = Traffic()
    for tid in TENANTS:
        out.tenants.append(
            {
                "id": tid,
                "name": tid.title(),
                "policy": Policy(daily_budget_usd=daily_budget(tid, n)).model_dump_json(),
                "created_at": now - timedelta(days=days + 1),
                "updated_at": now - timedelta(days=days + 1),
            }
        )
    names = list(TENANTS)
    span = days * 86_400 - 1
    for i in range(n):
        rid = f"req-{i:07d}"
        tenant = names[min(int(rng.expovariate(1.2)), len(names) - 1)]
        created = now - timedelta(seconds=rng.randint(0, span))
        modality = rng.choices(MODALITIES, weights=(60, 25, 5, 10))[0]
        pattern = rng.choices(("direct", "rag", "agent"), weights=(60, 30, 10))[0]
        start = rng.choices(TIERS, weights=(80, 15, 5))[0]
        path = [start]
        reasons: list[str] = []
        while path[-1] != "strong" and rng.random() < 0.12:
            reasons.append(rng.choice(REASONS))
            path.append(TIERS[TIERS.index(path[-1]) + 1])
        image_count, detail, image_tokens = 0, "", 0
        if modality == "image":
            high, low = rng.randint(0, 3), rng.randint(0, 2)
            if high + low == 0:
                low = 1
            image_count = high + low
            detail = ",".join(f"{lv}:{c}" for lv, c in (("high", high), ("low", low)) if c)
            image_tokens = high * 765 + low * 85
        stages = {
            s: round(rng.lognormvariate(0, 1) * (40 if s == "attempt_1" else 2), 3)
            for s in STAGES
            if pattern == "rag" or s not in ("embed", "retrieve")
        }
        text_tokens, output_tokens = rng.randint(50, 3000), rng.randint(10, 800)
        outcome = "ok" if rng.random() > 0.03 else "error"
        costs = [rng.randint(20, 5_000) * (1 + TIERS.index(t) * 4) for t in path]
        gold = rng.random() < 0.15 and pattern == "rag"
        for attempt, (tier, cost) in enumerate(zip(path, costs, strict=True), start=1):
            out.ledger.append(
                {
                    "request_id": rid,
                    "attempt": attempt,
                    "tenant_id": tenant,
                    "user_id": f"user-{rng.randint(1, 50)}",
                    "key_id": None,
                    "instance_id": "bench",
                    "route": "auto",
                    "pattern": pattern,
                    "tier": tier,
                    "provider": "primary",
                    "model": MODELS[tier],
                    "day": created.date().isoformat(),
                    "month": created.strftime("%Y-%m"),
                    "state": "settled",
                    "outcome": "ok" if attempt == len(path) else "check_failed",
                    "reason": reasons[attempt - 1] if attempt < len(path) else None,
                    "reserved_micros": cost * 3,
                    "cost_micros": cost,
                    "overrun_micros": 0,
                    "text_tokens": text_tokens,
                    "image_tokens": image_tokens,
                    "audio_tokens": 0,
                    "cached_tokens": 0,
                    "output_tokens": output_tokens,
                    "image_count": image_count,
                    "image_detail": detail,
                    "latency_ms": int(stages["attempt_1"]),
                    "ttft_ms": None,
                    "created_at": created,
                    "settled_at": created,
                }
            )
        out.requests.append(
            {
                "request_id": rid,
                "tenant_id": tenant,
                "user_id": None,
                "route": "auto",
                "pattern": pattern,
                "start_tier": start,
                "tier": path[-1],
                "model": MODELS[path[-1]],
                "attempts": len(path),
                "escalations": ",".join(reasons),
                "outcome": outcome,
                "error_type": None if outcome == "ok" else "ProviderError",
                "status": 200 if outcome == "ok" else 502,
                "modality": modality,
                "image_count": image_count,
                "image_detail": detail,
                "text_tokens": text_tokens,
                "image_tokens": image_tokens,
                "audio_tokens": 0,
                "output_tokens": output_tokens,
                "cost_micros": sum(costs),
                "latency_ms": int(sum(stages.values())),
                "ttft_ms": None,
                "stages": orjson.dumps(stages).decode(),
                "retrieved": "[]",
                "gold_hit": (1 if rng.random() < 0.7 else 0) if gold else None,
                "recall_k": rng.choice((5, 10)) if gold else None,
                "created_at": created,
            }
        )
        if rng.random() < 0.05:
            up = rng.random() < (0.6 if modality == "image" else 0.9)
            out.feedback.append(
                {
                    "request_id": rid,
                    "tenant_id": tenant,
                    "user_id": None,
                    "rating": 1 if up else -1,
                    "comment": None,
                    "labels": "[]",
                    "modality": modality,
                    "created_at": created + timedelta(seconds=30),
                }
            )
        if pattern == "rag" and rng.random() < 0.05:
            ok = rng.random() > 0.1
            out.judgments.append(
                {
                    "request_id": rid,
                    "tenant_id": tenant,
                    "route": "auto",
                    "judge": "gpt-4.1-mini",
                    "faithfulness": round(rng.uniform(0.5, 1), 3) if ok else None,
                    "relevance": round(rng.uniform(0.6, 1), 3) if ok else None,
                    "grounding": round(rng.uniform(0.4, 1), 3) if ok else None,
                    "cost_micros": 100,
                    "status": "ok" if ok else rng.choice(("failed", "timeout")),
                    "error": None,
                    "created_at": created + timedelta(seconds=5),
                }
            )
    return out


def write(db: Database, traffic: Traffic) -> None:
    with db.engine.begin() as conn:
        for table, rows in (
            (tenants, traffic.tenants),
            (requests, traffic.requests),
            (ledger, traffic.ledger),
            (feedback, traffic.feedback),
            (judgments, traffic.judgments),
        ):
            for i in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[i : i + CHUNK])


def fill(db: Database, n: int, *, now: datetime | None = None, seed: int = 7) -> Traffic:
    traffic = generate(n, now=now or datetime.now(UTC), seed=seed)
    write(db, traffic)
    return traffic
