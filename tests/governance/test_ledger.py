"""The ledger on its own: migrations match the schema in code, reserve/settle/release
bookkeeping, the reconciler, budget periods in a tenant's time zone."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from turnout.core import BudgetExceededError, Usage
from turnout.gateway.governance import AttemptPlan, Database, Ledger, Periods, Policy
from turnout.gateway.governance._schema import instances, ledger, metadata, spend


@pytest.fixture
def db(ledger_db: Database) -> Database:
    return ledger_db  # SQLite, then PostgreSQL (tests/services.py)


def test_migrations_build_exactly_the_schema_in_code(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    db.migrate()  # a second start finds nothing to do


def _plan(request_id: str, micros: int, policy: Policy, attempt: int = 1) -> AttemptPlan:
    return AttemptPlan(
        request_id=request_id,
        attempt=attempt,
        tenant_id="acme",
        policy=policy,
        user_id="bob",
        key_id=None,
        route="auto",
        pattern="direct",
        tier="cheap",
        provider="primary",
        model="gpt-4.1-mini",
        image_count=0,
        image_detail="",
        reserved_micros=micros,
    )


def _totals(db: Database) -> dict[str, tuple[int, int, int]]:
    with db.engine.connect() as conn:
        return {
            r.period: (r.spent_micros, r.reserved_micros, r.overrun_micros)
            for r in conn.execute(select(spend))
        }


def test_reserve_settle_release_keep_the_totals_equal_to_the_rows(db: Database) -> None:
    book = Ledger(db)
    book.register()
    policy = Policy(daily_budget_usd=Decimal("1"), monthly_budget_usd=Decimal("10"))
    a = book.reserve(_plan("r1", 400_000, policy))
    b = book.reserve(_plan("r2", 400_000, policy))
    assert _totals(db)["day"] == (0, 800_000, 0)
    with pytest.raises(BudgetExceededError, match=r"daily budget of \$1\.00 has \$0\.20 left"):
        book.reserve(_plan("r3", 300_000, policy))
    spent = book.settle(a, Usage(text_input_tokens=10, output_tokens=5), 120_000, outcome="ok")
    assert spent is not None and spent.day_micros == 120_000
    assert book.settle(a, Usage(), 999, outcome="ok") is None  # settled once only
    book.release(b, outcome="error", reason="UpstreamUnavailable")
    book.release(b, outcome="error")  # idempotent
    # A provider that bills beyond the reservation: the excess is kept and visible.
    c = book.reserve(_plan("r4", 100_000, policy))
    book.settle(c, Usage(), 150_000, outcome="ok")
    assert _totals(db) == {"day": (270_000, 0, 50_000), "month": (270_000, 0, 50_000)}
    with db.engine.connect() as conn:
        states = {r.request_id: (r.state, r.cost_micros) for r in conn.execute(select(ledger))}
    assert states == {
        "r1": ("settled", 120_000),
        "r2": ("released", 0),
        "r3": ("refused", 0),
        "r4": ("settled", 150_000),
    }


def test_the_monthly_budget_refuses_too(db: Database) -> None:
    book = Ledger(db)
    book.register()
    policy = Policy(daily_budget_usd=Decimal("5"), monthly_budget_usd=Decimal("0.5"))
    with pytest.raises(BudgetExceededError, match="monthly budget of"):
        book.reserve(_plan("m1", 600_000, policy))
    assert _totals(db).get("day", (0, 0, 0))[1] == 0  # the day's part rolled back too


@pytest.mark.parametrize("in_doubt", ["charge", "release"])
def test_reservations_of_a_dead_process_are_reconciled(db: Database, in_doubt: str) -> None:
    # A real process reserves and dies without settling (os._exit: no cleanup at all).
    url = db.engine.url.render_as_string(hide_password=False)
    script = (
        "import os, sys\n"
        "from decimal import Decimal\n"
        "from turnout.gateway.governance import Database, Ledger, Policy, AttemptPlan\n"
        "db = Database.open(sys.argv[1]); book = Ledger(db); book.register()\n"
        "p = AttemptPlan('dead-1', 1, 'acme', Policy(daily_budget_usd=Decimal(1)), None,\n"
        "    None, 'auto', 'direct', 'cheap', 'primary', 'm', 0, '', 250000)\n"
        "book.reserve(p)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, url], check=True, timeout=60)
    assert _totals(db)["day"] == (0, 250_000, 0)
    book = Ledger(db)
    book.register()
    assert book.reconcile(in_doubt, timeout_s=3600) == 1  # dead pid on this host: no wait
    charged = 250_000 if in_doubt == "charge" else 0
    assert _totals(db)["day"] == (charged, 0, 0)
    with db.engine.connect() as conn:
        row = conn.execute(select(ledger).where(ledger.c.request_id == "dead-1")).one()
        stopped = conn.execute(select(instances.c.stopped_at)).scalars().all()
    assert (row.state, row.cost_micros) == ("in_doubt", charged)
    assert sum(s is not None for s in stopped) == 1  # the dead one, not ourselves
    assert book.reconcile(in_doubt, timeout_s=3600) == 0


def test_a_live_process_is_left_alone(db: Database) -> None:
    first, second = Ledger(db), Ledger(db)
    first.register()
    second.register()
    first.reserve(_plan("live-1", 1000, Policy()))
    assert second.reconcile("charge", timeout_s=3600) == 0
    assert first.open_reservations() == 1


def test_periods_follow_the_tenants_time_zone() -> None:
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert (Periods("UTC", moment).day, Periods("UTC", moment).month) == ("2026-11-30", "2026-11")
    tokyo = Periods("Asia/Tokyo", moment)  # already 08:30 on December 1st there
    assert (tokyo.day, tokyo.month) == ("2026-12-01", "2026-12")
    assert tokyo.day_resets().isoformat() == "2026-12-02T00:00:00+09:00"
    assert tokyo.month_resets().isoformat() == "2027-01-01T00:00:00+09:00"
