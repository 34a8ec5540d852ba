"""The governor: what the gateway asks of governance, request by request.

    caller = governor.identify(authorization, user)     401
    governor.check_access(caller, plan)                  403
    capped = governor.cap(caller, chat, facts, plan)     413, or a downscaled request
    admission = await governor.admit(caller, tokens)     429 rate_limit_exceeded
    meter = governor.meter(...)                          per attempt: reserve (429
        budget_exceeded) before the call, settle or release after it

It also runs the upkeep: a heartbeat so other replicas know this one lives, and the
reconciler that settles reservations left by replicas that died mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from turnout.core import (
    BudgetExceededError,
    ChatRequest,
    ModelCard,
    PermissionDeniedError,
    Settings,
    Usage,
)

from .._intake import RequestFacts
from .._router import Plan
from .._upstreams import Upstream
from ._alerts import Alerts
from ._database import Database, ledger_url
from ._image_caps import Capped, apply_cap
from ._ledger import AttemptPlan, Ledger, Reservation
from ._limits import Admission, RateLimiter, Subject, build_rate_limiter
from ._tenants import Caller, TenantDirectory
from ._worst_case import ceil_micros, worst_case
from ._writer import LedgerWriter

log = logging.getLogger("turnout.gateway.governance")


def detail_summary(details: Iterable[str]) -> str:
    """'high:3,low:1': how many images at each detail level (ledger, log, record)."""
    counts = Counter(details)
    return ",".join(f"{d}:{n}" for d, n in sorted(counts.items()))


@dataclass
class RequestMeter:
    """Reserves and settles each attempt of one request against its tenant's budgets."""

    governor: Governor
    caller: Caller
    request_id: str
    plan: Plan
    facts: RequestFacts
    text_bytes: int
    output_cap: int
    attempts: int = 0
    reserved_micros: int = 0
    image_note: str | None = None
    reservations: list[Reservation] = field(default_factory=list)

    def _attempt(self, tier: str, upstream: Upstream) -> AttemptPlan:
        self.attempts += 1
        bound = worst_case(upstream.card, self.facts, self.text_bytes, self.output_cap)
        return AttemptPlan(
            request_id=self.request_id,
            attempt=self.attempts,
            tenant_id=self.caller.tenant.id,
            policy=self.caller.tenant.policy,
            user_id=self.caller.user,
            key_id=self.caller.key_id,
            route=self.plan.route,
            pattern=self.plan.pattern,
            tier=tier,
            provider=upstream.deployment.provider,
            model=upstream.deployment.model,
            image_count=len(self.facts.images),
            image_detail=detail_summary(i.detail for i in self.facts.images),
            reserved_micros=bound.micros,
        )

    async def reserve(self, tier: str, upstream: Upstream) -> Reservation:
        attempt = self._attempt(tier, upstream)
        ledger = self.governor.ledger
        result = await self.governor.writer.write(lambda conn: ledger.reserve_in(conn, attempt))
        if isinstance(result, BudgetExceededError):
            raise result
        self.reserved_micros += result.reserved_micros
        return result

    async def settle(
        self,
        reservation: Reservation,
        usage: Usage,
        cost: Decimal,
        *,
        outcome: str,
        reason: str | None = None,
        latency_s: float | None = None,
        ttft_s: float | None = None,
    ) -> None:
        micros = ceil_micros(cost) if cost > 0 else 0
        spent = await self.governor.writer.write(
            lambda conn: self.governor.ledger.settle_in(
                conn,
                reservation,
                usage,
                micros,
                outcome=outcome,
                reason=reason,
                latency_ms=_ms(latency_s),
                ttft_ms=_ms(ttft_s),
            )
        )
        if spent is not None:
            overrun = max(0, micros - reservation.reserved_micros)
            if overrun:
                log.warning(
                    "request %s: %s billed %d micro-dollars beyond its reservation",
                    self.request_id,
                    self.caller.tenant.id,
                    overrun,
                )
            self.governor.check_alerts(spent, self.caller, overrun)

    async def charge_reserved(self, reservation: Reservation, *, outcome: str, reason: str) -> None:
        """Usage unknown (a stream cut short): charge the worst case, which bounds it."""
        await self.settle(
            reservation,
            Usage(),
            Decimal(reservation.reserved_micros) / 1_000_000,
            outcome=outcome,
            reason=reason,
        )

    async def release(
        self,
        reservation: Reservation,
        *,
        outcome: str,
        reason: str | None = None,
        latency_s: float | None = None,
    ) -> None:
        await self.governor.writer.write(
            lambda conn: self.governor.ledger.release_in(
                conn, reservation, outcome=outcome, reason=reason, latency_ms=_ms(latency_s)
            )
        )


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


class Governor:
    def __init__(self, settings: Settings, db: Database, limiter: RateLimiter) -> None:
        self.settings = settings
        self.config = settings.governance
        self.db = db
        self.limiter = limiter
        self.directory = TenantDirectory(db)
        self.ledger = Ledger(db)
        self.writer = LedgerWriter(db)
        self.alerts = Alerts(db, self.config.alerts)
        self._upkeep: asyncio.Task[None] | None = None
        self._alert_tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def open(cls, settings: Settings) -> Governor:
        db = Database.open(ledger_url(settings))
        limiter = build_rate_limiter(
            settings.governance.redis_url, lease_s=settings.gateway.deadline_s + 60
        )
        return cls(settings, db, limiter)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        await self.db.run(self.ledger.register)
        await self._reconcile()
        self._upkeep = asyncio.get_running_loop().create_task(self._upkeep_loop())

    async def _reconcile(self) -> None:
        settled = await self.db.run(
            self.ledger.reconcile, self.config.in_doubt, self.config.instance_timeout_s
        )
        if settled:
            log.warning(
                "reconciled %d reservations left by gateway processes that died mid-call "
                "(in_doubt=%s)",
                settled,
                self.config.in_doubt,
            )

    async def _upkeep_loop(self) -> None:
        interval = min(self.config.reconcile_interval_s, self.config.instance_timeout_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.db.run(self.ledger.heartbeat)
                await self._reconcile()
            except Exception:  # upkeep must outlive a bad moment of the database
                log.exception("ledger upkeep failed; retrying in %.0f s", interval)

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        if self._alert_tasks:
            await asyncio.wait(list(self._alert_tasks), timeout=5)
        await self.alerts.drain()
        await self.writer.stop()
        with contextlib.suppress(Exception):
            await self.db.run(self.ledger.stopped)
        await self.limiter.aclose()
        self.db.close()

    # -- the request path ------------------------------------------------------------
    def identify(self, authorization: str | None, user_hint: str | None) -> Caller:
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else authorization.strip()
        if not self.config.require_keys and not (token and token.startswith("tk-")):
            return self.directory.anonymous(user_hint)
        return self.directory.authenticate(token, user_hint)

    def check_access(self, caller: Caller, plan: Plan, upstreams: Sequence[Upstream]) -> None:
        policy = caller.tenant.policy
        if plan.settings is not None and not policy.allows_route(plan.route):
            raise PermissionDeniedError(
                f"tenant {caller.tenant.id} may not use route {plan.route!r}; it may use: "
                f"{', '.join(policy.allowed_routes or []) or 'none'}"
            )
        if plan.settings is None:  # a concrete model, bypassing routing
            for upstream in upstreams:
                dep = upstream.deployment
                if not policy.allows_model(dep.label, dep.model):
                    raise PermissionDeniedError(
                        f"tenant {caller.tenant.id} may not use model {dep.model!r}"
                    )

    def cap(
        self,
        caller: Caller,
        chat: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        cards: Sequence[ModelCard],
    ) -> Capped:
        policy = caller.tenant.policy
        return apply_cap(
            chat,
            facts,
            cards,
            cap=policy.image_token_cap,
            max_images=policy.max_images,
            policy=plan.settings.image_cap if plan.settings is not None else "downscale",
            tenant=caller.tenant.id,
        )

    def output_cap(self, chat: ChatRequest, plan: Plan) -> tuple[int, bool]:
        """The output tokens to reserve, and whether the request must be sent with it."""
        if chat.output_limit is not None:
            return chat.output_limit, False
        route_cap = plan.settings.max_output_tokens if plan.settings is not None else None
        return route_cap or self.config.default_max_output_tokens, True

    async def admit(self, caller: Caller, tokens: int) -> Admission:
        tenant = caller.tenant
        subjects = [Subject("tenant", f"t:{tenant.id}", tenant.policy.tenant_limits.limits())]
        if caller.user is not None:
            subjects.append(
                Subject("user", f"u:{tenant.id}:{caller.user}", tenant.policy.user_limits.limits())
            )
        return await self.limiter.admit(subjects, tokens)

    def meter(
        self,
        caller: Caller,
        request_id: str,
        plan: Plan,
        facts: RequestFacts,
        text_bytes: int,
        output_cap: int,
    ) -> RequestMeter:
        return RequestMeter(self, caller, request_id, plan, facts, text_bytes, output_cap)

    def budgets_left(self) -> list[tuple[str, str, float]]:
        """(tenant, period, USD left) for every tenant with a budget; for the metrics."""
        out = []
        for tenant in self.directory.list_tenants():
            policy = tenant.policy
            limits = {"day": policy.daily_budget_usd, "month": policy.monthly_budget_usd}
            if not any(v is not None for v in limits.values()):
                continue
            totals = self.ledger.totals(tenant.id, policy)
            for period, limit in limits.items():
                if limit is not None:
                    used = totals[period]["spent_micros"] + totals[period]["reserved_micros"]
                    out.append((tenant.id, period, float(limit) - used / 1e6))
        return out

    def check_alerts(self, spent: Any, caller: Caller, overrun: int) -> None:
        if not self.alerts.worth_checking(spent, caller.tenant.policy, overrun):
            return

        async def run() -> None:
            try:
                due = await self.db.run(
                    self.alerts.after_settle, spent, caller.tenant.policy, overrun
                )
                self.alerts.deliver(due)
            except Exception:  # alerts never affect requests
                log.exception("alert check for tenant %s failed", caller.tenant.id)

        task = asyncio.get_running_loop().create_task(run())
        self._alert_tasks.add(task)
        task.add_done_callback(self._alert_tasks.discard)
