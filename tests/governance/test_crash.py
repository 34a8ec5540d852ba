"""A gateway killed with SIGKILL mid-call: after a restart nothing is left reserved, and the
tenant's spend is what the stand-in upstream served, exactly, except for the calls in doubt
(served, but the gateway died before it could settle them), which are charged their worst case
(`in_doubt: charge`, at least what was served) or released (`in_doubt: release`, nothing).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from sqlalchemy import select

from turnout.gateway.governance._database import Database
from turnout.gateway.governance._policy import Policy
from turnout.gateway.governance._schema import instances, ledger, spend
from turnout.providers.standin import Reply, Served, StandInServer

from .test_concurrency import (
    MODEL,
    body,
    gateway_config,
    new_tenant,
    start_serve,
    stop,
    unit_cost_micros,
    wait_healthy,
)

FAST = 3  # settled normally before the kill
SLOW = 5  # in flight at the stand-in when the gateway dies
DELAY = 1.5  # how long the stand-in takes over each slow one


def poll(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def marker(served: Served) -> str:
    """The request id the test put into the prompt, read back from what the stand-in saw."""
    found = re.search(r"question (\S+)", served.body["messages"][-1]["content"])
    assert found
    return found.group(1)


def post(url: str, key: str, request_id: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body(request_id),
        headers={"authorization": f"Bearer {key}", "x-request-id": request_id},
        timeout=15,
    )


@pytest.mark.parametrize("in_doubt", ["charge", "release"])
def test_sigkill_mid_call_then_restart_reconciles_to_what_was_served(
    tmp_path: Path, in_doubt: Literal["charge", "release"]
) -> None:
    home = tmp_path / "home"
    tenant_id = f"crash-{uuid.uuid4().hex[:8]}"
    db = Database.open(f"sqlite:///{home / 'ledger.db'}")  # the gateway's default ledger
    key = new_tenant(db, tenant_id, Policy(daily_budget_usd=1))
    log = tmp_path / "serve.log"
    with StandInServer() as upstream:
        # Different usage for each, so a row can only match the answer it was for.
        upstream.script.push(
            MODEL,
            *(Reply(prompt_tokens=30 + i, completion_tokens=100 + i) for i in range(FAST)),
            *(
                Reply(delay=DELAY, prompt_tokens=40 + i, completion_tokens=500 + 7 * i)
                for i in range(SLOW)
            ),
        )
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump(gateway_config(upstream.url, in_doubt=in_doubt)))
        proc, url = start_serve(config, home, log)
        try:
            wait_healthy(proc, url, log)
            for i in range(FAST):
                assert post(url, key, f"fast-{i}").status_code == 200

            failures: dict[str, BaseException] = {}

            def slow(request_id: str) -> None:
                try:
                    post(url, key, request_id)
                except httpx.TransportError as exc:  # the gateway died under it
                    failures[request_id] = exc

            workers = [
                threading.Thread(target=slow, args=(f"slow-{i}",), daemon=True) for i in range(SLOW)
            ]
            for worker in workers:
                worker.start()
            # Kill while every slow call is at the stand-in and reserved in the ledger.
            poll(lambda: len(upstream.script.received) == FAST + SLOW, 10, "the slow calls")
            assert count_states(db, tenant_id)["reserved"] == SLOW
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            for worker in workers:
                worker.join(timeout=10)
            assert sorted(failures) == [f"slow-{i}" for i in range(SLOW)]
            # The provider finishes (and bills) them though nobody is left to read them.
            poll(lambda: len(upstream.script.served) == FAST + SLOW, 10, "the stand-in")
            assert count_states(db, tenant_id)["reserved"] == SLOW  # nothing settled them yet

            # The restart reconciles before it serves: the dead pid is on this host.
            proc, url = start_serve(config, home, log)
            wait_healthy(proc, url, log)
            check_books(db, tenant_id, in_doubt, upstream.script.served_list())

            # The restarted gateway carries on from those books.
            before = spent(db, tenant_id)
            upstream.script.push(MODEL, Reply(prompt_tokens=20, completion_tokens=60))
            assert post(url, key, "after").status_code == 200
            after = upstream.script.served_list()[-1]
            assert marker(after) == "after"
            assert spent(db, tenant_id) == before + unit_cost_micros(after.usage)
        finally:
            stop(proc)
            db.close()


def count_states(db: Database, tenant_id: str) -> dict[str, int]:
    with db.engine.connect() as conn:
        states = conn.execute(select(ledger.c.state).where(ledger.c.tenant_id == tenant_id))
        counts: dict[str, int] = {}
        for (state,) in states:
            counts[state] = counts.get(state, 0) + 1
        return counts


def spent(db: Database, tenant_id: str) -> int:
    with db.engine.connect() as conn:
        totals = conn.execute(select(spend).where(spend.c.tenant_id == tenant_id)).all()
    assert {t.period for t in totals} == {"day", "month"}
    assert len({t.spent_micros for t in totals}) == 1
    assert all(t.reserved_micros == 0 for t in totals)
    return int(totals[0].spent_micros)


def check_books(
    db: Database, tenant_id: str, in_doubt: Literal["charge", "release"], served: list[Served]
) -> None:
    with db.engine.connect() as conn:
        rows = conn.execute(select(ledger).where(ledger.c.tenant_id == tenant_id)).all()
        running = conn.execute(select(instances).where(instances.c.stopped_at.is_(None))).all()
    assert len(running) == 1, "the killed instance is marked stopped; only the new one runs"
    served_cost = {marker(s): unit_cost_micros(s.usage) for s in served}
    assert len(served_cost) == FAST + SLOW
    assert sorted(r.request_id for r in rows) == sorted(served_cost)
    assert not [r for r in rows if r.state == "reserved"]
    for row in rows:
        cost = served_cost[row.request_id]
        if row.request_id.startswith("fast-"):  # settled by the gateway: exactly what was served
            assert (row.state, row.cost_micros, row.overrun_micros) == ("settled", cost, 0)
        elif in_doubt == "charge":  # its worst case, which bounds what was served
            assert (row.state, row.outcome) == ("in_doubt", "in_doubt_charged")
            assert row.cost_micros == row.reserved_micros > cost
        else:
            assert (row.state, row.outcome, row.cost_micros) == ("in_doubt", "in_doubt_released", 0)
    # The running totals are the rows' sum, and relate to the stand-in's record exactly.
    total = sum(r.cost_micros for r in rows)
    assert spent(db, tenant_id) == total
    fast = sum(c for m, c in served_cost.items() if m.startswith("fast-"))
    slow = sum(c for m, c in served_cost.items() if m.startswith("slow-"))
    doubt = sum(r.reserved_micros for r in rows if r.request_id.startswith("slow-"))
    if in_doubt == "charge":
        assert total == fast + doubt >= fast + slow
    else:  # served but never charged: the tenant underpays by exactly those calls
        assert total == fast and slow > 0
