"""The demo's summary, read back from what the gateway recorded: the ledger's attempts,
its per-request records and alerts, and the Prometheus metrics on /metrics. Nothing in it
comes from the demo's own counting."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from turnout.core import micros_text

if TYPE_CHECKING:
    from rich.console import Console

    from turnout.gateway.governance import Database


@dataclass(frozen=True)
class Summary:
    data: dict[str, Any]

    @classmethod
    def read(cls, db: Database, metrics_text: str) -> Summary:
        from turnout.gateway.governance import Policy
        from turnout.gateway.governance._reports import spend_report
        from turnout.gateway.governance._schema import alerts, requests, tenants
        from turnout.gateway.telemetry import dashboard_data

        board = dashboard_data(db, days=1)
        with db.engine.connect() as conn:
            by_path = conn.execute(
                select(
                    requests.c.route,
                    requests.c.pattern,
                    requests.c.start_tier,
                    requests.c.tier,
                    requests.c.outcome,
                    func.count(),
                    func.sum(requests.c.cost_micros),
                ).group_by(
                    requests.c.route,
                    requests.c.pattern,
                    requests.c.start_tier,
                    requests.c.tier,
                    requests.c.outcome,
                )
            ).all()
            refusals = conn.execute(
                select(
                    requests.c.tenant_id,
                    requests.c.status,
                    requests.c.error_type,
                    requests.c.outcome,
                    func.count(),
                )
                .where(requests.c.outcome != "ok")
                .group_by(
                    requests.c.tenant_id,
                    requests.c.status,
                    requests.c.error_type,
                    requests.c.outcome,
                )
            ).all()
            policies = {
                tid: Policy.model_validate_json(raw)
                for tid, raw in conn.execute(select(tenants.c.id, tenants.c.policy)).all()
            }
            fired = conn.execute(
                select(
                    alerts.c.tenant_id,
                    alerts.c.kind,
                    alerts.c.threshold,
                    alerts.c.spent_micros,
                    alerts.c.limit_micros,
                    alerts.c.fired_at,
                ).order_by(alerts.c.fired_at, alerts.c.threshold)
            ).all()
        spent = spend_report(db, by="tenant")  # the ledger's attempts, as `turnout spend`
        metrics = _metrics(metrics_text)
        paths = [
            {
                "route": route,
                "pattern": pattern,
                "start_tier": start,
                "tier": tier,
                "outcome": outcome,
                "requests": int(n),
                "cost_usd": micros_text(int(micros or 0)),
            }
            for route, pattern, start, tier, outcome, n, micros in sorted(
                by_path, key=lambda r: (r[0], r[1], r[2], r[3], r[4])
            )
        ]
        tenants_out = []
        for row in sorted(spent["rows"], key=lambda r: str(r["tenant"])):
            policy = policies.get(row["tenant"])
            budget = policy.daily_budget_usd if policy else None
            cost = row["cost_usd"]
            tenants_out.append(
                {
                    "tenant": row["tenant"],
                    "requests": row["requests"],
                    "cost_usd": cost,
                    "image_tokens": row["image_tokens"],
                    "daily_budget_usd": None if budget is None else f"{budget:f}",
                    "budget_used": None if not budget else round(float(Decimal(cost) / budget), 4),
                    "image_token_cap": policy.image_token_cap if policy else None,
                }
            )
        return cls(
            {
                "requests": board["summary"]["requests"],
                "cost_usd": spent["total_usd"],
                "paths": paths,
                "tiers": board["tiers"],
                "escalations": board["escalations"],
                "escalations_metric": metrics["escalations"],
                "tenants": tenants_out,
                "refused": [
                    {"tenant": t, "status": int(s), "error": e or o, "requests": int(n)}
                    for t, s, e, o, n in sorted(
                        refusals, key=lambda r: (r[0], r[1], r[2] or "", r[3])
                    )
                ],
                "image_tokens": [
                    {
                        "detail": s["detail"],
                        "images": sum(s["images"]),
                        "image_tokens": s["total_tokens"],
                        "tokens_per_image": s["tokens_per_image"],
                    }
                    for s in board["image_tokens"]["series"]
                ],
                "image_tokens_metric": metrics["image_tokens"],
                "stages": board["stages"]["rows"],
                "searches_metric": metrics["searches"],
                "satisfaction": board["satisfaction"],
                "judged": board["judged"],
                "recall": board["recall"],
                "alerts": [
                    {
                        "tenant": tenant,
                        "kind": kind,
                        "threshold": int(threshold),
                        "spent_usd": micros_text(int(spent_micros)),
                        "limit_usd": None if limit is None else micros_text(int(limit)),
                        "fired_at": fired_at.isoformat(),
                    }
                    for tenant, kind, threshold, spent_micros, limit, fired_at in fired
                ],
            }
        )

    def render(self, out: Console) -> None:
        from rich.table import Table

        d = self.data
        out.rule("[bold]summary[/bold]: read back from the ledger and /metrics")
        out.print(f"{d['requests']} requests recorded, ${d['cost_usd']} in all")

        table = Table(title="requests by route, pattern and tier", title_justify="left")
        for name in ("route", "pattern", "started on", "answered by", "outcome", "requests"):
            table.add_column(name, justify="right" if name == "requests" else "left")
        table.add_column("cost", justify="right")
        for p in d["paths"]:
            table.add_row(
                p["route"],
                p["pattern"],
                p["start_tier"],
                p["tier"],
                p["outcome"],
                str(p["requests"]),
                f"${p['cost_usd']}",
            )
        out.print(table)

        table = Table(title="escalations, and why", title_justify="left")
        table.add_column("reason")
        table.add_column("ledger", justify="right")
        table.add_column("metrics", justify="right")
        metric = d["escalations_metric"]
        for row in d["escalations"]:
            table.add_row(row["reason"], str(row["count"]), _count(metric.get(row["reason"])))
        if not d["escalations"]:
            table.add_row("none", "0", _count(sum(metric.values())))
        out.print(table)

        table = Table(title="cost per tenant against its daily budget", title_justify="left")
        for name in ("tenant", "requests", "cost", "daily budget", "used", "image tokens"):
            table.add_column(name, justify="left" if name == "tenant" else "right")
        for t in d["tenants"]:
            used = "-" if t["budget_used"] is None else f"{t['budget_used']:.0%}"
            budget = "none" if t["daily_budget_usd"] is None else f"${t['daily_budget_usd']}"
            table.add_row(
                t["tenant"],
                str(t["requests"]),
                f"${t['cost_usd']}",
                budget,
                used,
                f"{t['image_tokens']:,}",
            )
        out.print(table)

        if d["refused"]:
            table = Table(title="requests refused, or failed a check", title_justify="left")
            for name in ("tenant", "status", "error", "requests"):
                table.add_column(name, justify="right" if name == "requests" else "left")
            for r in d["refused"]:
                table.add_row(r["tenant"], str(r["status"]), r["error"], str(r["requests"]))
            out.print(table)

        table = Table(title="image tokens by detail level", title_justify="left")
        for name in ("detail", "images", "image tokens", "per image", "metrics"):
            table.add_column(name, justify="left" if name == "detail" else "right")
        metric = d["image_tokens_metric"]
        for row in d["image_tokens"]:
            table.add_row(
                row["detail"],
                f"{row['images']:,}",
                f"{row['image_tokens']:,}",
                f"{row['tokens_per_image']:,}",
                _count(metric.get(row["detail"])),
            )
        out.print(table)

        table = Table(title="time per stage (ms)", title_justify="left")
        for name in ("stage", "requests", "p50", "p95"):
            table.add_column(name, justify="left" if name == "stage" else "right")
        for row in d["stages"]:
            table.add_row(
                row["stage"], str(row["count"]), f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}"
            )
        out.print(table)

        table = Table(title="quality signals", title_justify="left")
        table.add_column("signal")
        table.add_column("count", justify="right")
        table.add_column("value", justify="right")
        for row in d["satisfaction"]:
            table.add_row(
                f"feedback on {row['modality']} answers",
                str(row["ratings"]),
                f"{row['share_up']:.0%} thumbs up",
            )
        for row in d["judged"]:
            grounding = "-" if row["grounding"] is None else f"{row['grounding']:.2f}"
            table.add_row(
                "answers judged (grounding in the retrieved text)",
                f"{row['judged']} ({row['failed']} failed)",
                f"mean {grounding}",
            )
        for series in d["recall"]:
            gold = sum(p["gold"] for p in series["points"])
            hits = sum(p["recall"] * p["gold"] for p in series["points"])
            table.add_row(
                f"retrieval recall@{series['k']} (requests naming their gold page)",
                str(gold),
                f"{hits / gold:.2f}",
            )
        out.print(table)

        searches = d["searches_metric"]
        if searches:
            out.print(
                "visual searches (metrics): "
                + ", ".join(f"{n:g} {kind}" for kind, n in sorted(searches.items()))
            )
        out.print("alerts fired:" if d["alerts"] else "alerts fired: none")
        for a in d["alerts"]:
            limit = f" of ${a['limit_usd']}" if a["limit_usd"] else ""
            out.print(
                f"  {a['tenant']}: {a['kind']} budget {a['threshold']}% crossed at "
                f"${a['spent_usd']}{limit}",
                markup=False,
            )


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _metrics(text: str) -> dict[str, dict[str, float]]:
    """Escalations by reason, image tokens by detail and searches by query kind, summed over
    the other labels, from the Prometheus text the gateway served."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {"escalations": {}, "image_tokens": {}, "searches": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "turnout_escalations_total":
                _add(out["escalations"], sample.labels["reason"], sample.value)
            elif sample.name == "turnout_tokens_total" and sample.labels.get("modality") == "image":
                _add(out["image_tokens"], sample.labels["detail"], sample.value)
            elif sample.name == "turnout_searches_total":
                _add(out["searches"], sample.labels["query"], sample.value)
    return out


def _add(totals: dict[str, float], key: str, value: float) -> None:
    totals[key] = totals.get(key, 0.0) + value
