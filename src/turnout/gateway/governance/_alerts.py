"""Spend alerts: a budget threshold crossed, a burst of spend, usage beyond a reservation.

Each alert fires once per tenant, budget, period and threshold across every replica:
the database's unique constraint decides which replica sends it. Delivery (a JSON POST
to `governance.alerts.webhook_url`, retried with backoff) runs off the request path, and
every alert is also a warning-level log line, so a dead webhook loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from turnout.core import AlertSettings, micros_text

from ._database import Database
from ._ledger import Clock, Spent, utc_now
from ._policy import Policy
from ._schema import alerts, ledger

log = logging.getLogger("turnout.gateway.alerts")
_BURST_EVERY_S = 60.0  # a burst check sums an hour of ledger rows: at most once a minute


@dataclass(frozen=True)
class Alert:
    id: int
    payload: dict[str, Any]


class Alerts:
    def __init__(self, db: Database, settings: AlertSettings, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._fired: set[tuple[str, str, str, int]] = set()
        self._burst_checked: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- deciding (runs on the ledger's thread) ---------------------------------------
    def worth_checking(self, spent: Spent, policy: Policy, overrun_micros: int) -> bool:
        """Cheap, in memory: whether `after_settle` could fire anything now (a threshold
        crossed and not yet fired here, an overrun, or a burst check due), so most
        settlements cost no database work for alerts."""
        if overrun_micros > 0:
            return True
        if time.monotonic() - self._burst_checked.get(spent.tenant_id, 0.0) >= _BURST_EVERY_S:
            return True
        budgets = (
            ("day", spent.day, spent.day_micros, policy.daily_budget_usd),
            ("month", spent.month, spent.month_micros, policy.monthly_budget_usd),
        )
        for kind, starts, micros, budget in budgets:
            if budget is None or budget <= 0:
                continue
            percent = micros * 100 / int(budget * 1_000_000)
            for threshold in policy.alert_thresholds:
                if percent >= threshold and (spent.tenant_id, kind, starts, threshold) not in (
                    self._fired
                ):
                    return True
        return False

    def after_settle(self, spent: Spent, policy: Policy, overrun_micros: int = 0) -> list[Alert]:
        due: list[Alert] = []
        budgets = (
            ("day", spent.day, spent.day_micros, policy.daily_budget_usd),
            ("month", spent.month, spent.month_micros, policy.monthly_budget_usd),
        )
        for kind, starts, micros, budget in budgets:
            if budget is None or budget <= 0:
                continue
            limit = int(budget * 1_000_000)
            percent = micros * 100 / limit
            for threshold in policy.alert_thresholds:
                if percent >= threshold:
                    alert = self._fire(spent.tenant_id, kind, starts, threshold, micros, limit)
                    if alert is not None:
                        due.append(alert)
        if overrun_micros > 0:
            alert = self._fire(
                spent.tenant_id, "overrun", spent.day, 0, overrun_micros, None, unique=False
            )
            if alert is not None:
                due.append(alert)
        burst = self._burst(spent.tenant_id)
        if burst is not None:
            due.append(burst)
        return due

    def _fire(
        self,
        tenant: str,
        kind: str,
        starts: str,
        threshold: int,
        spent_micros: int,
        limit_micros: int | None,
        *,
        unique: bool = True,
    ) -> Alert | None:
        key = (tenant, kind, starts, threshold)
        if unique and key in self._fired:
            return None
        payload = self._payload(tenant, kind, starts, threshold, spent_micros, limit_micros)
        row: dict[str, Any] = {
            "tenant_id": tenant,
            "kind": kind,
            "starts": starts if unique else f"{starts}#{time.time_ns() % 10**5}",
            "threshold": threshold,
            "spent_micros": spent_micros,
            "limit_micros": limit_micros,
            "fired_at": self.clock(),
            "payload": orjson.dumps(payload).decode(),
        }
        try:
            with self.db.engine.begin() as conn:
                written = conn.execute(insert(alerts).values(**row))
        except IntegrityError:
            self._fired.add(key)  # another request or replica fired it first
            return None
        self._fired.add(key)
        assert written.inserted_primary_key is not None
        return Alert(int(written.inserted_primary_key[0]), payload)

    def _payload(
        self,
        tenant: str,
        kind: str,
        starts: str,
        threshold: int,
        spent_micros: int,
        limit_micros: int | None,
    ) -> dict[str, Any]:
        column = ledger.c.month if kind == "month" else ledger.c.day
        scope = (ledger.c.tenant_id == tenant, column == starts, ledger.c.cost_micros > 0)
        with self.db.engine.connect() as conn:
            users = conn.execute(
                select(
                    ledger.c.user_id,
                    func.sum(ledger.c.cost_micros).label("cost"),
                    func.count(func.distinct(ledger.c.request_id)).label("requests"),
                )
                .where(*scope)
                .group_by(ledger.c.user_id)
                .order_by(desc("cost"))
                .limit(5)
            ).all()
            requests = conn.execute(
                select(
                    ledger.c.request_id,
                    func.sum(ledger.c.cost_micros).label("cost"),
                    func.max(ledger.c.model).label("model"),
                    func.max(ledger.c.route).label("route"),
                    func.sum(ledger.c.image_tokens).label("image_tokens"),
                    func.max(ledger.c.image_count).label("images"),
                )
                .where(*scope)
                .group_by(ledger.c.request_id)
                .order_by(desc("cost"))
                .limit(5)
            ).all()
        message = {
            "day": f"daily budget {threshold}% used",
            "month": f"monthly budget {threshold}% used",
            "burst": "spend burst: the last hour spent more than usual",
            "overrun": "a provider billed more than the request's reservation",
        }[kind]
        return {
            "type": "turnout.spend_alert",
            "kind": kind,
            "message": f"tenant {tenant}: {message}",
            "tenant": tenant,
            "period": starts,
            "threshold_percent": threshold if kind in ("day", "month") else None,
            "spent_usd": micros_text(spent_micros),
            "limit_usd": micros_text(limit_micros) if limit_micros is not None else None,
            "top_spenders": [
                {
                    "user": u.user_id,
                    "cost_usd": micros_text(int(u.cost)),
                    "requests": int(u.requests),
                }
                for u in users
            ],
            "top_requests": [
                {
                    "request_id": r.request_id,
                    "cost_usd": micros_text(int(r.cost)),
                    "model": r.model,
                    "route": r.route,
                    "images": int(r.images or 0),
                    "image_tokens": int(r.image_tokens or 0),
                }
                for r in requests
            ],
            "fired_at": self.clock().isoformat(),
        }

    def _burst(self, tenant: str) -> Alert | None:
        last = self._burst_checked.get(tenant, 0.0)
        if time.monotonic() - last < _BURST_EVERY_S:
            return None
        self._burst_checked[tenant] = time.monotonic()
        now = self.clock()
        hour_ago, week_ago = now - timedelta(hours=1), now - timedelta(days=7, hours=1)
        with self.db.engine.connect() as conn:

            def total(start: Any, end: Any) -> int:
                return int(
                    conn.execute(
                        select(func.coalesce(func.sum(ledger.c.cost_micros), 0)).where(
                            ledger.c.tenant_id == tenant,
                            ledger.c.created_at >= start,
                            ledger.c.created_at < end,
                        )
                    ).scalar_one()
                )

            hour = total(hour_ago, now + timedelta(seconds=1))
            daily_average = total(week_ago, hour_ago) / 7
        if hour < self.settings.burst_min_usd * 1_000_000:
            return None
        if hour <= self.settings.burst_multiple * daily_average:
            return None
        return self._fire(tenant, "burst", now.strftime("%Y-%m-%dT%H"), 0, hour, None)

    # -- delivering (on the event loop, off the request path) ---------------------------
    def deliver(self, due: list[Alert]) -> None:
        for alert in due:
            payload = alert.payload
            log.warning(
                "alert %s: %s (spent $%s%s)",
                alert.id,
                payload["message"],
                payload["spent_usd"],
                f" of ${payload['limit_usd']}" if payload["limit_usd"] else "",
            )
            if self.settings.webhook_url:
                task = asyncio.get_running_loop().create_task(self._post(alert))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _post(self, alert: Alert) -> None:
        import aiohttp

        url = self.settings.webhook_url
        assert url is not None
        body = orjson.dumps(alert.payload)
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        for attempt in range(self.settings.webhook_attempts):
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.post(
                        url, data=body, headers={"content-type": "application/json"}
                    ) as reply,
                ):
                    if reply.status < 300:
                        await self.db.run(self._delivered, alert.id)
                        return
                    problem = f"HTTP {reply.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning(
                "alert %s: webhook try %d of %d failed (%s)",
                alert.id,
                attempt + 1,
                self.settings.webhook_attempts,
                problem,
            )
            await asyncio.sleep(min(30.0, 0.2 * 2**attempt))
        log.error("alert %s: webhook gave up; the alert is in the ledger's alerts table", alert.id)

    def _delivered(self, alert_id: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(delivered_at=self.clock())
            )

    async def drain(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
