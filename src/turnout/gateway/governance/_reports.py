"""Spend reports from the ledger: totals by day, route, model, pattern, user or tenant."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from sqlalchemy import case, func, select

from turnout.core import InvalidInputError, micros_text

from ._database import Database
from ._schema import ledger

GroupBy = Literal["day", "route", "model", "pattern", "user", "tenant", "tier"]
GROUPS: tuple[str, ...] = ("day", "route", "model", "pattern", "user", "tenant", "tier")
_COLUMN = {
    "day": ledger.c.day,
    "route": ledger.c.route,
    "model": ledger.c.model,
    "pattern": ledger.c.pattern,
    "user": ledger.c.user_id,
    "tenant": ledger.c.tenant_id,
    "tier": ledger.c.tier,
}


def parse_since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidInputError(f"since: {value!r} is not a date (YYYY-MM-DD)") from exc


def spend_report(
    db: Database, *, tenant: str | None = None, by: str = "day", since: str | None = None
) -> dict[str, Any]:
    """Rows of {key, requests, attempts, cost_usd, tokens by modality, images}, costliest
    first; `since` is a day (YYYY-MM-DD) in each tenant's own time zone."""
    if by not in _COLUMN:
        raise InvalidInputError(f"by: {by!r} is not one of {', '.join(GROUPS)}")
    start = parse_since(since)
    key = _COLUMN[by]
    query = select(
        key.label("key"),
        func.count(func.distinct(ledger.c.request_id)).label("requests"),
        func.count().label("attempts"),
        func.sum(ledger.c.cost_micros).label("cost"),
        func.sum(ledger.c.reserved_micros).label("reserved"),
        func.sum(ledger.c.text_tokens).label("text_tokens"),
        func.sum(ledger.c.image_tokens).label("image_tokens"),
        func.sum(ledger.c.audio_tokens).label("audio_tokens"),
        func.sum(ledger.c.cached_tokens).label("cached_tokens"),
        func.sum(ledger.c.output_tokens).label("output_tokens"),
        func.sum(case((ledger.c.state == "refused", 1), else_=0)).label("refused"),
    ).where(ledger.c.state != "reserved")
    if tenant is not None:
        query = query.where(ledger.c.tenant_id == tenant)
    if start is not None:
        query = query.where(ledger.c.day >= start)
    query = query.group_by(key).order_by(func.sum(ledger.c.cost_micros).desc(), key)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
        open_micros = conn.execute(
            select(func.coalesce(func.sum(ledger.c.reserved_micros), 0)).where(
                ledger.c.state == "reserved",
                *([ledger.c.tenant_id == tenant] if tenant else []),
            )
        ).scalar_one()
    out = [
        {
            by: r.key,
            "requests": int(r.requests),
            "attempts": int(r.attempts),
            "refused": int(r.refused or 0),
            "cost_usd": micros_text(int(r.cost or 0)),
            "text_tokens": int(r.text_tokens or 0),
            "image_tokens": int(r.image_tokens or 0),
            "audio_tokens": int(r.audio_tokens or 0),
            "cached_tokens": int(r.cached_tokens or 0),
            "output_tokens": int(r.output_tokens or 0),
        }
        for r in rows
    ]
    total = sum(int(r.cost or 0) for r in rows)
    return {
        "tenant": tenant,
        "by": by,
        "since": start,
        "rows": out,
        "total_usd": micros_text(total),
        "in_flight_usd": micros_text(int(open_micros)),
    }
