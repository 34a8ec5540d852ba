"""The dashboard's numbers: aggregations over the ledger and the stored signals.

Every series is grouped in the database; Python only reshapes the grouped rows (a few
hundred at most) and computes stage percentiles over a bounded sample of recent requests.
Money leaves here as float USD: it is for charts, never for accounting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import Boolean, ColumnElement, Connection, case, func, literal_column, select

from turnout.core import InvalidInputError

from ..governance import Database, Policy
from ..governance._schema import feedback, judgments, ledger, requests, tenants

Freshness = Callable[[], Sequence[Mapping[str, Any]]]

STAGE_SAMPLE = 20_000  # recent requests whose stage timings feed the percentiles
MAX_DAYS = 366


def dashboard_data(
    db: Database,
    *,
    days: int = 14,
    now: datetime | None = None,
    freshness: Freshness | None = None,
) -> dict[str, Any]:
    """Every chart's data for the last `days` days (UTC, today included); see the module
    docstring of `_dashboard` for the shape. Blocking: call it off the event loop."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days: {days} is not between 1 and {MAX_DAYS}")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first = now.date() - timedelta(days=days - 1)
    day_list = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    since = datetime.combine(first, time.min, UTC)
    day_of = _utc_day(db)
    with db.engine.connect() as conn:
        spent = conn.execute(
            select(
                ledger.c.tenant_id,
                ledger.c.day,
                ledger.c.pattern,
                ledger.c.model,
                func.sum(ledger.c.cost_micros),
            )
            .where(ledger.c.day >= day_list[0], ledger.c.state != "reserved")
            # day first: grouping by tenant first lures SQLite into walking the
            # (tenant_id, created_at) index row by row, 4x slower than a plain scan
            .group_by(ledger.c.day, ledger.c.tenant_id, ledger.c.pattern, ledger.c.model)
        ).all()
        policies = conn.execute(select(tenants.c.id, tenants.c.policy)).all()
        recent = _recent_requests(db, conn, since)
        tiers = conn.execute(
            select(
                requests.c.tier,
                requests.c.escalations,
                func.count(),
                func.sum(requests.c.cost_micros),
                func.sum(case((requests.c.outcome != "ok", 1), else_=0)),
            )
            .where(recent)
            .group_by(requests.c.tier, requests.c.escalations)
        ).all()
        images = conn.execute(
            select(
                day_of(requests.c.created_at),
                requests.c.image_detail,
                func.sum(requests.c.image_tokens),
                func.sum(requests.c.image_count),
            )
            .where(recent, requests.c.image_count > 0)
            .group_by(day_of(requests.c.created_at), requests.c.image_detail)
        ).all()
        recall = conn.execute(
            select(
                day_of(requests.c.created_at),
                requests.c.recall_k,
                func.avg(requests.c.gold_hit),
                func.count(),
            )
            .where(recent, requests.c.gold_hit.is_not(None))
            .group_by(day_of(requests.c.created_at), requests.c.recall_k)
        ).all()
        stage_rows = conn.execute(
            select(requests.c.stages)
            .where(recent)
            .order_by(requests.c.created_at.desc())
            .limit(STAGE_SAMPLE)
        ).scalars()
        stages = _stage_percentiles(stage_rows)
        ratings = conn.execute(
            select(
                feedback.c.modality,
                func.count(),
                func.sum(case((feedback.c.rating > 0, 1), else_=0)),
            )
            .where(feedback.c.created_at >= since)
            .group_by(feedback.c.modality)
        ).all()
        judged = conn.execute(
            select(
                day_of(judgments.c.created_at),
                func.avg(case((judgments.c.status == "ok", judgments.c.faithfulness))),
                func.avg(case((judgments.c.status == "ok", judgments.c.relevance))),
                func.avg(case((judgments.c.status == "ok", judgments.c.grounding))),
                func.sum(case((judgments.c.status == "ok", 1), else_=0)),
                func.count(),
            )
            .where(judgments.c.created_at >= since)
            .group_by(day_of(judgments.c.created_at))
        ).all()

    total = sum(int(r[2]) for r in tiers)
    return {
        "generated_at": now.isoformat(),
        "days": day_list,
        "summary": {
            "requests": total,
            "cost_usd": _usd(sum(int(r[3] or 0) for r in tiers)),
            "failed": sum(int(r[4] or 0) for r in tiers),
        },
        "cost_per_tenant": _cost_per_tenant(spent, policies, day_list),
        "cost_by_pattern": _cost_by(spent, 2),
        "cost_by_model": _cost_by(spent, 3),
        "tiers": _tier_share(tiers, total),
        "escalations": _escalations(tiers),
        "stages": stages,
        "image_tokens": _image_tokens(images, day_list),
        "satisfaction": [
            {"modality": m, "ratings": int(n), "thumbs_up": int(up), "share_up": int(up) / n}
            for m, n, up in sorted(ratings)
        ],
        "judged": _judged(judged),
        "recall": _recall(recall),
        "freshness": _freshness(freshness),
    }


def _recent_requests(db: Database, conn: Connection, since: datetime) -> ColumnElement[bool]:
    """The window's filter on `requests`. SQLite has no statistics unless someone ran ANALYZE,
    so it guesses the window is small and reads it through the created_at index, a lookup
    per row: 3x slower than a scan when the window holds most of the table. Two counts on
    that index (milliseconds) give it the true share through `likelihood()`."""
    recent = requests.c.created_at >= since
    if not db.is_sqlite:
        return recent
    total = conn.execute(select(func.count()).select_from(requests)).scalar_one()
    if not total:
        return recent
    inside = conn.execute(select(func.count()).where(recent)).scalar_one()
    share = min(max(inside / total, 0.001), 1.0)
    return func.likelihood(recent, literal_column(f"{share:.3f}"), type_=Boolean)


def _utc_day(db: Database) -> Callable[[Any], ColumnElement[str]]:
    """The UTC day ('YYYY-MM-DD') of a timestamp column, in this database's dialect."""
    # Literals, not bound parameters: PostgreSQL must see the GROUP BY expression as the
    # very same text as the selected one.
    if db.is_sqlite:
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC here.
        return lambda column: func.substr(column, literal_column("1"), literal_column("10"))
    return lambda column: func.to_char(
        func.timezone(literal_column("'UTC'"), column), literal_column("'YYYY-MM-DD'")
    )


def _usd(micros: int) -> float:
    return round(micros / 1_000_000, 6)


def _cost_per_tenant(
    spent: Sequence[Any], policies: Sequence[Any], day_list: list[str]
) -> list[dict[str, Any]]:
    """One series per tenant with spend in the window, costliest first, with its daily
    budget (None where it has none)."""
    index = {day: i for i, day in enumerate(day_list)}
    per_tenant: dict[str, list[int]] = {}
    for tenant, day, _pattern, _model, micros in spent:
        if day in index:  # a tenant ahead of UTC may already be on tomorrow
            per_tenant.setdefault(tenant, [0] * len(day_list))[index[day]] += int(micros or 0)
    budgets = {tid: _daily_budget(policy) for tid, policy in policies}
    series = [
        {
            "tenant": tenant,
            "cost_usd": [_usd(m) for m in micros],
            "total_usd": _usd(sum(micros)),
            "daily_budget_usd": budgets.get(tenant),
        }
        for tenant, micros in per_tenant.items()
    ]
    return sorted(series, key=lambda s: (-s["total_usd"], s["tenant"]))


def _daily_budget(policy_json: str) -> float | None:
    try:
        budget = Policy.model_validate_json(policy_json).daily_budget_usd
    except ValueError:  # a policy this version cannot read: chart the spend, skip the line
        return None
    return None if budget is None else float(budget)


def _cost_by(spent: Sequence[Any], position: int) -> list[dict[str, Any]]:
    totals: dict[str, int] = {}
    for row in spent:
        totals[row[position]] = totals.get(row[position], 0) + int(row[4] or 0)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"key": key, "cost_usd": _usd(micros)} for key, micros in ranked]


def _tier_share(rows: Sequence[Any], total: int) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for tier, _escalations, n, _cost, _failed in rows:
        counts[tier] = counts.get(tier, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"tier": t, "requests": n, "share": n / total} for t, n in ranked]


def _escalations(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Escalation reasons, each counted once per time it happened (a request that escalated
    twice for 'empty' counts twice)."""
    counts: dict[str, int] = {}
    for _tier, escalations, n, _cost, _failed in rows:
        for reason in filter(None, (r.strip() for r in (escalations or "").split(","))):
            counts[reason] = counts.get(reason, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"reason": r, "count": n} for r, n in ranked]


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) of sorted values."""
    if not ordered:
        raise ValueError("percentile of no values")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _stage_percentiles(rows: Iterable[str]) -> dict[str, Any]:
    """p50 and p95 per stage over the sampled requests; stages keep the order in which they
    first appear, which is the pipeline's order."""
    samples: dict[str, list[float]] = {}
    orders: set[tuple[str, ...]] = set()
    sampled = 0
    for raw in rows:
        sampled += 1
        try:
            timings = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # one bad row must not take the chart down
        if not isinstance(timings, dict):
            continue
        orders.add(tuple(timings))
        for stage, ms in timings.items():
            if isinstance(ms, int | float) and not isinstance(ms, bool):
                samples.setdefault(stage, []).append(float(ms))
    out = []
    for stage in _pipeline_order(orders, list(samples)):
        values = samples[stage]
        values.sort()
        out.append(
            {
                "stage": stage,
                "count": len(values),
                "p50_ms": round(percentile(values, 0.50), 3),
                "p95_ms": round(percentile(values, 0.95), 3),
            }
        )
    return {"sampled_requests": sampled, "sample_limit": STAGE_SAMPLE, "rows": out}


def _pipeline_order(orders: set[tuple[str, ...]], seen: list[str]) -> list[str]:
    """Merge the stage orders requests recorded (a RAG request has embed and retrieve between
    reserve and the provider call, a direct one does not) into one pipeline order."""
    from graphlib import CycleError, TopologicalSorter

    graph: TopologicalSorter[str] = TopologicalSorter()
    for stage in seen:  # first-seen order breaks ties between unrelated stages
        graph.add(stage)
    for order in sorted(orders, key=len, reverse=True):
        for before, after in pairwise(order):
            graph.add(after, before)
    try:
        ranked = list(graph.static_order())
    except CycleError:  # stages recorded in conflicting orders: keep first-seen order
        return seen
    timed = set(seen)
    return [stage for stage in ranked if stage in timed]


def detail_levels(image_detail: str) -> dict[str, int]:
    """'high:3,low:1' -> {'high': 3, 'low': 1}; a bare 'low' counts one image."""
    levels: dict[str, int] = {}
    for part in image_detail.split(","):
        name, _, count = part.strip().partition(":")
        if name:
            levels[name] = levels.get(name, 0) + (int(count) if count.isdigit() else 1)
    return levels


def _image_tokens(rows: Sequence[Any], day_list: list[str]) -> dict[str, Any]:
    """Image tokens per day by detail level. A request's tokens are not split by image, so a
    request that mixed levels is counted under 'mixed' rather than guessed apart."""
    index = {day: i for i, day in enumerate(day_list)}
    tokens: dict[str, list[int]] = {}
    images: dict[str, list[int]] = {}
    for day, image_detail, n_tokens, n_images in rows:
        if day not in index:
            continue
        levels = detail_levels(image_detail or "")
        level = next(iter(levels)) if len(levels) == 1 else ("mixed" if levels else "unknown")
        tokens.setdefault(level, [0] * len(day_list))[index[day]] += int(n_tokens or 0)
        images.setdefault(level, [0] * len(day_list))[index[day]] += int(n_images or 0)
    series = []
    for level in sorted(tokens, key=lambda lv: -sum(tokens[lv])):
        total_tokens, total_images = sum(tokens[level]), sum(images[level])
        series.append(
            {
                "detail": level,
                "image_tokens": tokens[level],
                "images": images[level],
                "total_tokens": total_tokens,
                "tokens_per_image": round(total_tokens / total_images, 1) if total_images else 0,
            }
        )
    return {"series": series}


def _judged(rows: Sequence[Any]) -> list[dict[str, Any]]:
    def mean(value: Any) -> float | None:
        return None if value is None else round(float(value), 4)

    return [
        {
            "day": day,
            "faithfulness": mean(faith),
            "relevance": mean(rel),
            "grounding": mean(ground),
            "judged": int(ok or 0),
            "failed": int(n) - int(ok or 0),
        }
        for day, faith, rel, ground, ok, n in sorted(rows, key=lambda r: r[0])
    ]


def _recall(rows: Sequence[Any]) -> list[dict[str, Any]]:
    by_k: dict[int | None, list[dict[str, Any]]] = {}
    for day, k, hit, n in sorted(rows, key=lambda r: (r[1] or 0, r[0])):
        by_k.setdefault(k, []).append({"day": day, "recall": round(float(hit), 4), "gold": n})
    return [{"k": k, "points": points} for k, points in by_k.items()]


def _freshness(source: Freshness | None) -> dict[str, Any]:
    if source is None:
        return {"collections": [], "error": None}
    collections = []
    try:
        for row in source():
            age, slo = float(row["age_s"]), row.get("slo_s")
            collections.append(
                {
                    "collection": str(row["collection"]),
                    "age_s": age,
                    "slo_s": None if slo is None else float(slo),
                    "stale": slo is not None and age > float(slo),
                }
            )
    except Exception as exc:  # the index layer failing must not take the dashboard down
        return {"collections": [], "error": f"index freshness: {type(exc).__name__}: {exc}"}
    return {"collections": collections, "error": None}
