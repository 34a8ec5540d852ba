"""The ledger: every attempt is reserved before its call and settled after it.

Reserve: in one transaction, add the attempt's worst-case cost to the tenant's `reserved`
for the day and the month, each only if `spent + reserved + cost <= budget`, and write
the attempt's row as `reserved`. The condition is inside the UPDATE, so concurrent
requests (threads, processes, replicas on one PostgreSQL) cannot both take the last room.
Settle: in one transaction, turn the row to `settled` (only if it is still `reserved`,
so a settle and a reconcile cannot both count it) and move its reservation to `spent`.
Reconcile: rows still `reserved` by a gateway process that died are settled as
`in_doubt`, charged their worst case or released, as `governance.in_doubt` says.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, DateTime, bindparam, func, insert, select, text, update

from turnout.core import BudgetExceededError, Usage, from_micros

from ._database import Database
from ._policy import Periods, Policy
from ._schema import instances, ledger, spend

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class AttemptPlan:
    """What is about to be called, and its worst-case cost."""

    request_id: str
    attempt: int
    tenant_id: str
    policy: Policy
    user_id: str | None
    key_id: str | None
    route: str
    pattern: str
    tier: str
    provider: str
    model: str
    image_count: int
    image_detail: str
    reserved_micros: int


@dataclass(frozen=True)
class Reservation:
    row_id: int
    tenant_id: str
    day: str
    month: str
    reserved_micros: int


@dataclass(frozen=True)
class Spent:
    """A tenant's totals after a settlement, for alerts."""

    tenant_id: str
    day: str
    month: str
    day_micros: int
    month_micros: int


@dataclass(frozen=True)
class Refusal:
    period: Literal["day", "month"]
    limit_micros: int
    spent_micros: int
    reserved_micros: int


def usd(micros: int) -> str:
    """Dollars for messages: cents where that is exact enough, micro-dollars otherwise."""
    amount = from_micros(micros)
    if amount >= 10 or amount == amount.quantize(Decimal("0.01")):
        return f"${amount.quantize(Decimal('0.01'))}"
    return f"${amount.normalize():f}"


def _budget_micros(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 1_000_000)


# The hot path in plain SQL, built once: every request runs these, and building the same
# statement with SQLAlchemy's expression language costs more than SQLite takes to run it.
# Both SQLite (3.35+) and PostgreSQL take this syntax (ON CONFLICT, RETURNING).
_TS = DateTime(timezone=True)
_ENSURE = text(
    "INSERT INTO spend (tenant_id, period, starts, spent_micros, reserved_micros, "
    "overrun_micros) VALUES (:tenant, 'day', :day, 0, 0, 0), (:tenant, 'month', :month, 0, 0, 0) "
    "ON CONFLICT DO NOTHING"
)
# One statement moves both periods, each only if its budget has room: 2 rows or none.
_RESERVE = text(
    "UPDATE spend SET reserved_micros = reserved_micros + :amount WHERE tenant_id = :tenant "
    "AND ((period = 'day' AND starts = :day AND (CAST(:day_limit AS BIGINT) IS NULL "
    "OR spent_micros + reserved_micros + :amount <= CAST(:day_limit AS BIGINT))) "
    "OR (period = 'month' AND starts = :month AND (CAST(:month_limit AS BIGINT) IS NULL "
    "OR spent_micros + reserved_micros + :amount <= CAST(:month_limit AS BIGINT))))"
)
_ROW = text(
    "INSERT INTO ledger (request_id, attempt, tenant_id, user_id, key_id, instance_id, route, "
    "pattern, tier, provider, model, day, month, state, outcome, reason, reserved_micros, "
    "cost_micros, overrun_micros, text_tokens, image_tokens, audio_tokens, cached_tokens, "
    "output_tokens, image_count, image_detail, created_at) VALUES (:request_id, :attempt, "
    ":tenant_id, :user_id, :key_id, :instance_id, :route, :pattern, :tier, :provider, :model, "
    ":day, :month, :state, :outcome, :reason, :reserved_micros, 0, 0, 0, 0, 0, 0, 0, "
    ":image_count, :image_detail, :created_at) RETURNING id"
).bindparams(bindparam("created_at", type_=_TS))
_SETTLE_ROW = text(
    "UPDATE ledger SET state = 'settled', outcome = :outcome, reason = :reason, "
    "cost_micros = :cost, overrun_micros = :overrun, text_tokens = :text_tokens, "
    "image_tokens = :image_tokens, audio_tokens = :audio_tokens, "
    "cached_tokens = :cached_tokens, output_tokens = :output_tokens, latency_ms = :latency_ms, "
    "ttft_ms = :ttft_ms, settled_at = :now WHERE id = :id AND state = 'reserved'"
).bindparams(bindparam("now", type_=_TS))
# PostgreSQL: every transaction that writes a tenant's spend rows takes this lock first.
# Without it, the two-row UPDATEs lock day and month in whatever order the scan meets them
# and the ON CONFLICT insert waits on in-flight updates: concurrent replicas deadlock
# (a 503 for the request; a settle that loses keeps its reservation held). Row locks
# serialise a tenant's reservations anyway, so this costs a round trip, not throughput.
_LOCK_TENANT = text("SELECT pg_advisory_xact_lock(7151911, hashtext(:tenant))")
_MOVE = text(
    "UPDATE spend SET reserved_micros = reserved_micros - :reserved, "
    "spent_micros = spent_micros + :cost, overrun_micros = overrun_micros + :overrun "
    "WHERE tenant_id = :tenant AND ((period = 'day' AND starts = :day) "
    "OR (period = 'month' AND starts = :month)) RETURNING period, spent_micros"
)


class _NoRoom(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class Ledger:
    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock
        self.instance_id = secrets.token_hex(8)
        self._ensured: set[tuple[str, str, str]] = set()  # spend rows known to exist

    # -- the instance this process is ----------------------------------------------
    def register(self) -> None:
        now = self.clock()
        with self.db.engine.begin() as conn:
            conn.execute(
                insert(instances).values(
                    id=self.instance_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                    stopped_at=None,
                )
            )

    def heartbeat(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(instances)
                .where(instances.c.id == self.instance_id)
                .values(heartbeat_at=self.clock())
            )

    def stopped(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(instances)
                .where(instances.c.id == self.instance_id)
                .values(stopped_at=self.clock())
            )

    # -- reserve, settle, release --------------------------------------------------
    def _row(self, plan: AttemptPlan, periods: Periods, state: str, now: datetime) -> Any:
        return _ROW, {
            "request_id": plan.request_id,
            "attempt": plan.attempt,
            "tenant_id": plan.tenant_id,
            "user_id": plan.user_id,
            "key_id": plan.key_id,
            "instance_id": self.instance_id,
            "route": plan.route,
            "pattern": plan.pattern,
            "tier": plan.tier,
            "provider": plan.provider,
            "model": plan.model,
            "day": periods.day,
            "month": periods.month,
            "state": state,
            "outcome": "refused" if state == "refused" else None,
            "reason": "budget_exceeded" if state == "refused" else None,
            "reserved_micros": plan.reserved_micros if state == "reserved" else 0,
            "image_count": plan.image_count,
            "image_detail": plan.image_detail,
            "created_at": now,
        }

    def reserve(self, plan: AttemptPlan) -> Reservation:
        """Reserve `plan.reserved_micros`, or raise BudgetExceededError (and record it)."""
        with self.db.engine.begin() as conn:
            result = self.reserve_in(conn, plan)
        if isinstance(result, BudgetExceededError):
            raise result
        return result

    def reserve_in(self, conn: Connection, plan: AttemptPlan) -> Reservation | BudgetExceededError:
        """`reserve` inside the caller's transaction, in a savepoint of its own: a refusal
        undoes only this reservation, records the refused row, and is returned."""
        now = self.clock()
        periods = Periods(plan.policy.timezone, now)
        day_limit = _budget_micros(plan.policy.daily_budget_usd)
        month_limit = _budget_micros(plan.policy.monthly_budget_usd)
        params = {
            "tenant": plan.tenant_id,
            "day": periods.day,
            "month": periods.month,
            "amount": plan.reserved_micros,
            "day_limit": day_limit,
            "month_limit": month_limit,
        }
        ensured = (plan.tenant_id, periods.day, periods.month)
        try:
            with conn.begin_nested():
                _lock_tenant(conn, plan.tenant_id)
                if ensured not in self._ensured:
                    conn.execute(_ENSURE, params)
                moved = conn.execute(_RESERVE, params).rowcount
                if moved != 2 and ensured in self._ensured:
                    # The rows may have been removed behind this process's back: make
                    # sure they exist before reading a refusal into the miss.
                    conn.execute(_ENSURE, params)
                    moved = conn.execute(_RESERVE, params).rowcount
                if moved != 2:
                    raise _NoRoom(self._refusal(conn, plan, periods, day_limit, month_limit))
                statement, values = self._row(plan, periods, "reserved", now)
                row_id = conn.execute(statement, values).scalar_one()
        except _NoRoom as no_room:
            conn.execute(*self._row(plan, periods, "refused", now))
            return _budget_error(plan, periods, no_room.refusal)
        self._ensured.add(ensured)
        return Reservation(
            int(row_id), plan.tenant_id, periods.day, periods.month, plan.reserved_micros
        )

    def _refusal(
        self,
        conn: Connection,
        plan: AttemptPlan,
        periods: Periods,
        day_limit: int | None,
        month_limit: int | None,
    ) -> Refusal:
        """Which budget had no room (the statement moved neither row, so nothing to undo)."""
        amount = plan.reserved_micros
        for period, starts, limit in (
            ("day", periods.day, day_limit),
            ("month", periods.month, month_limit),
        ):
            row = conn.execute(
                select(spend).where(
                    spend.c.tenant_id == plan.tenant_id,
                    spend.c.period == period,
                    spend.c.starts == starts,
                )
            ).one()
            if limit is not None and row.spent_micros + row.reserved_micros + amount > limit:
                return Refusal(period, limit, row.spent_micros, row.reserved_micros)  # type: ignore[arg-type]
        raise AssertionError("a reservation moved one budget row but not the other")

    def settle(
        self,
        reservation: Reservation,
        usage: Usage,
        cost_micros: int,
        *,
        outcome: str,
        reason: str | None = None,
        latency_ms: int | None = None,
        ttft_ms: int | None = None,
    ) -> Spent | None:
        """Replace the reservation with what the attempt cost. None if it was already
        settled (by the reconciler); the excess over the reservation is kept as overrun."""
        with self.db.engine.begin() as conn:
            return self.settle_in(
                conn,
                reservation,
                usage,
                cost_micros,
                outcome=outcome,
                reason=reason,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
            )

    def settle_in(
        self,
        conn: Connection,
        reservation: Reservation,
        usage: Usage,
        cost_micros: int,
        *,
        outcome: str,
        reason: str | None = None,
        latency_ms: int | None = None,
        ttft_ms: int | None = None,
    ) -> Spent | None:
        """`settle` inside the caller's transaction."""
        overrun = max(0, cost_micros - reservation.reserved_micros)
        moved = conn.execute(
            _SETTLE_ROW,
            {
                "id": reservation.row_id,
                "outcome": outcome,
                "reason": reason,
                "cost": cost_micros,
                "overrun": overrun,
                "text_tokens": usage.text_input_tokens,
                "image_tokens": usage.image_input_tokens,
                "audio_tokens": usage.audio_input_tokens,
                "cached_tokens": usage.cached_input_tokens,
                "output_tokens": usage.output_tokens + usage.audio_output_tokens,
                "latency_ms": latency_ms,
                "ttft_ms": ttft_ms,
                "now": self.clock(),
            },
        )
        if moved.rowcount == 0:
            return None
        totals = self._move(conn, reservation, cost_micros, overrun)
        return Spent(reservation.tenant_id, reservation.day, reservation.month, *totals)

    def release(
        self,
        reservation: Reservation,
        *,
        outcome: str,
        reason: str | None = None,
        latency_ms: int | None = None,
    ) -> None:
        """The attempt cost nothing (the provider failed before serving it)."""
        with self.db.engine.begin() as conn:
            self.release_in(
                conn, reservation, outcome=outcome, reason=reason, latency_ms=latency_ms
            )

    def release_in(
        self,
        conn: Connection,
        reservation: Reservation,
        *,
        outcome: str,
        reason: str | None = None,
        latency_ms: int | None = None,
    ) -> None:
        """`release` inside the caller's transaction."""
        moved = conn.execute(
            update(ledger)
            .where(ledger.c.id == reservation.row_id, ledger.c.state == "reserved")
            .values(
                state="released",
                outcome=outcome,
                reason=reason,
                latency_ms=latency_ms,
                settled_at=self.clock(),
            )
        )
        if moved.rowcount:
            self._move(conn, reservation, 0, 0)

    def _move(
        self, conn: Connection, reservation: Reservation, cost: int, overrun: int
    ) -> tuple[int, int]:
        """Move a reservation into spend (day and month); the new spent totals."""
        _lock_tenant(conn, reservation.tenant_id)
        rows = conn.execute(
            _MOVE,
            {
                "reserved": reservation.reserved_micros,
                "cost": cost,
                "overrun": overrun,
                "tenant": reservation.tenant_id,
                "day": reservation.day,
                "month": reservation.month,
            },
        ).all()
        spent = {r.period: int(r.spent_micros) for r in rows}
        return spent["day"], spent["month"]

    # -- reconciliation ------------------------------------------------------------
    def _dead_instances(self, conn: Connection, timeout_s: float) -> list[str]:
        stale = self.clock() - timedelta(seconds=timeout_s)
        host = socket.gethostname()
        dead = []
        for row in conn.execute(select(instances).where(instances.c.id != self.instance_id)):
            if row.stopped_at is not None or as_utc(row.heartbeat_at) < stale:
                dead.append(row.id)
            elif row.host == host and not _alive(row.pid):
                dead.append(row.id)  # same machine: a vanished pid needs no timeout
        return dead

    def reconcile(self, in_doubt: Literal["charge", "release"], timeout_s: float) -> int:
        """Settle the reservations of dead gateway processes; how many were settled."""
        with self.db.engine.connect() as conn:
            dead = self._dead_instances(conn, timeout_s)
            if not dead:
                return 0
            rows = conn.execute(
                select(ledger).where(ledger.c.state == "reserved", ledger.c.instance_id.in_(dead))
            ).all()
        settled = 0
        for row in rows:
            reservation = Reservation(
                row.id, row.tenant_id, row.day, row.month, row.reserved_micros
            )
            charge = row.reserved_micros if in_doubt == "charge" else 0
            with self.db.engine.begin() as conn:
                moved = conn.execute(
                    update(ledger)
                    .where(ledger.c.id == row.id, ledger.c.state == "reserved")
                    .values(
                        state="in_doubt",
                        outcome=f"in_doubt_{'charged' if charge else 'released'}",
                        reason="gateway process died during the call",
                        cost_micros=charge,
                        settled_at=self.clock(),
                    )
                )
                if moved.rowcount:
                    self._move(conn, reservation, charge, 0)
                    settled += 1
        with self.db.engine.begin() as conn:
            # A dead instance with nothing open is finished; keep the table small.
            conn.execute(
                update(instances)
                .where(instances.c.id.in_(dead), instances.c.stopped_at.is_(None))
                .values(stopped_at=self.clock())
            )
        return settled

    # -- reading -------------------------------------------------------------------
    def totals(self, tenant_id: str, policy: Policy) -> dict[str, dict[str, int]]:
        periods = Periods(policy.timezone, self.clock())
        out: dict[str, dict[str, int]] = {}
        with self.db.engine.connect() as conn:
            for period, starts in (("day", periods.day), ("month", periods.month)):
                row = conn.execute(
                    select(spend).where(
                        spend.c.tenant_id == tenant_id,
                        spend.c.period == period,
                        spend.c.starts == starts,
                    )
                ).first()
                out[period] = {
                    "spent_micros": row.spent_micros if row else 0,
                    "reserved_micros": row.reserved_micros if row else 0,
                    "overrun_micros": row.overrun_micros if row else 0,
                }
        return out

    def open_reservations(self) -> int:
        with self.db.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(ledger).where(ledger.c.state == "reserved")
                ).scalar_one()
            )


def _lock_tenant(conn: Connection, tenant_id: str) -> None:
    if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already serialises
        conn.execute(_LOCK_TENANT, {"tenant": tenant_id})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _budget_error(plan: AttemptPlan, periods: Periods, refusal: Refusal) -> BudgetExceededError:
    name = "daily" if refusal.period == "day" else "monthly"
    resets = periods.day_resets() if refusal.period == "day" else periods.month_resets()
    left = max(0, refusal.limit_micros - refusal.spent_micros - refusal.reserved_micros)
    retry_after = max(1.0, (resets - datetime.now(UTC)).total_seconds())
    return BudgetExceededError(
        f"tenant {plan.tenant_id}: {name} budget of {usd(refusal.limit_micros)} has "
        f"{usd(left)} left (spent {usd(refusal.spent_micros)}, "
        f"{usd(refusal.reserved_micros)} held by requests in flight); this request may cost "
        f"up to {usd(plan.reserved_micros)} on {plan.model}; the budget resets at "
        f"{resets.isoformat()} ({plan.policy.timezone})",
        retry_after=retry_after,
    )
