"""Rate limits: the same behaviour from the in-process limiter and the Redis one, plus what only
Redis has (several clients and processes sharing counters, leases that expire, a server down).

Time: both limiters read the same fake clock (the Redis one sends it with each script instead
of reading the server's `TIME`), so both see exactly the same numbers. The lease test uses the
server's real clock.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.services import redis_url  # noqa: F401
from turnout.core import RateLimitExceededError, TurnoutError
from turnout.gateway.governance import _limits
from turnout.gateway.governance._limits import (
    Admission,
    InProcessRateLimiter,
    Limits,
    RateLimiter,
    RedisRateLimiter,
    Subject,
    build_rate_limiter,
    format_duration,
)


def tenant(**limits: int) -> Subject:
    return Subject("tenant", "t:acme", Limits(**limits))


def user(**limits: int) -> Subject:
    return Subject("user", "u:acme:bob", Limits(**limits))


def seconds(duration: str) -> float:
    """Parse "1m30.5s", "250ms", "6s" back into seconds."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?([\d.]+)s", duration)
    assert m, duration
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s)


@dataclass
class Harness:
    kind: str
    make: Callable[..., RateLimiter]
    advance: Callable[[float], None]


def _clean(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["in-process", "redis"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    now = [1000.0]

    def advance(s: float) -> None:
        now[0] += s

    if request.param == "in-process":
        yield Harness(
            "in-process",
            lambda **kw: InProcessRateLimiter(clock=lambda: now[0], **kw),
            advance,
        )
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"test-limits:{uuid.uuid4().hex}:"
    try:
        yield Harness(
            "redis",
            lambda **kw: RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0], **kw),
            advance,
        )
    finally:
        _clean(url, prefix)


def run(harness: Harness, body: Callable[[RateLimiter], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        limiter = harness.make(**kw)
        try:
            await body(limiter)
        finally:
            await limiter.aclose()

    asyncio.run(main())


async def refused(
    limiter: RateLimiter, subjects: list[Subject], tokens: int = 0
) -> RateLimitExceededError:
    with pytest.raises(RateLimitExceededError) as info:
        await limiter.admit(subjects, tokens)
    return info.value


# -- the same behaviour from both ---------------------------------------------------------


def test_requests_per_minute_refuse_then_refill(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        subjects = [tenant(requests_per_minute=5)]
        for _ in range(5):  # the bucket starts full: a burst of 5 passes
            await limiter.admit(subjects, 0)
        err = await refused(limiter, subjects)
        assert "tenant acme may send 5 requests per minute; retry in 12.0 s" in str(err)
        assert err.retry_after == pytest.approx(12.0, abs=0.05)
        harness.advance(6.0)  # half a request refilled: still no
        err = await refused(limiter, subjects)
        assert err.retry_after == pytest.approx(6.0, abs=0.05)
        harness.advance(6.0)  # one request refilled: exactly one passes
        await limiter.admit(subjects, 0)
        await refused(limiter, subjects)

    run(harness, body)


def test_tokens_per_minute_with_settle_refund(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        subjects = [tenant(tokens_per_minute=1000)]
        first = await limiter.admit(subjects, 800)
        err = await refused(limiter, subjects, 300)
        assert "may send 1000 tokens per minute and this request needs about 300" in str(err)
        assert err.retry_after == pytest.approx(6.0, abs=0.05)  # 100 short at 1000/min
        await first.settle_tokens(100)  # 700 come back: 900 left
        await first.settle_tokens(100)  # the same settlement again changes nothing
        second = await limiter.admit(subjects, 300)
        assert second.headers["x-ratelimit-remaining-tokens"] == "600"
        await refused(limiter, subjects, 601)
        await limiter.admit(subjects, 600)

    run(harness, body)


def test_settle_above_the_estimate_charges_the_extra(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        subjects = [tenant(tokens_per_minute=100)]
        admission = await limiter.admit(subjects, 50)
        await admission.settle_tokens(150)  # 100 more than admitted: the bucket owes 50
        err = await refused(limiter, subjects, 10)
        # 60 tokens short at 100 per minute.
        assert err.retry_after == pytest.approx(36.0, abs=0.05)
        assert err.headers["x-ratelimit-remaining-tokens"] == "0"

    run(harness, body)


def test_concurrency_slots_and_idempotent_release(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        subjects = [user(concurrent=2)]
        a = await limiter.admit(subjects, 0)
        await limiter.admit(subjects, 0)
        err = await refused(limiter, subjects)
        assert "user acme/bob may have 2 requests in flight at once" in str(err)
        assert err.retry_after is not None and err.retry_after > 0
        await a.release()
        await a.release()  # a second release must not free someone else's slot
        c = await limiter.admit(subjects, 0)
        await refused(limiter, subjects)
        await c.release()
        await limiter.admit(subjects, 0)

    run(harness, body)


def test_refusal_by_user_leaves_tenant_untouched(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        t = tenant(requests_per_minute=10, tokens_per_minute=600, concurrent=3)
        u = user(requests_per_minute=2)
        for _ in range(2):
            await limiter.admit([t, u], 100)  # tenant: 8 requests, 400 tokens, 1 slot left
        err = await refused(limiter, [t, u], 100)
        assert "user acme/bob may send 2 requests per minute" in str(err)
        # Had the refused request moved the tenant's counters, these would read 6, 200 and
        # the next tenant-only admit would find no slot.
        alone = await limiter.admit([t], 100)
        assert alone.headers["x-ratelimit-remaining-requests"] == "7"
        assert alone.headers["x-ratelimit-remaining-tokens"] == "300"
        err = await refused(limiter, [t], 100)
        assert "tenant acme may have 3 requests in flight at once" in str(err)

    run(harness, body)


def test_refusal_by_tenant_leaves_user_untouched(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        t = tenant(tokens_per_minute=500)
        u = user(requests_per_minute=3, concurrent=1)
        await limiter.admit([t], 450)  # another user of the tenant used most of it
        err = await refused(limiter, [u, t], 100)
        assert "tenant acme may send 500 tokens per minute" in str(err)
        ok = await limiter.admit([u], 0)  # the user's slot and requests were not taken
        assert ok.headers["x-ratelimit-remaining-requests"] == "2"

    run(harness, body)


def test_headers_come_from_the_tightest_subject(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        t = tenant(requests_per_minute=60, tokens_per_minute=1000)
        u = user(requests_per_minute=10)
        a = await limiter.admit([t, u], 500)
        h = a.headers
        # Requests: the user has 9 left of 10, the tenant 59 of 60: the user's numbers.
        assert h["x-ratelimit-limit-requests"] == "10"
        assert h["x-ratelimit-remaining-requests"] == "9"
        assert seconds(h["x-ratelimit-reset-requests"]) == pytest.approx(6.0, abs=0.05)
        # Tokens: only the tenant limits them; 500 of 1000 refill in 30 s.
        assert h["x-ratelimit-limit-tokens"] == "1000"
        assert h["x-ratelimit-remaining-tokens"] == "500"
        assert seconds(h["x-ratelimit-reset-tokens"]) == pytest.approx(30.0, abs=0.05)
        for _ in range(9):
            await limiter.admit([t, u], 0)
        err = await refused(limiter, [t, u], 0)
        # On refusal: the refusing limit's numbers, and when it would admit.
        assert err.headers["x-ratelimit-limit-requests"] == "10"
        assert err.headers["x-ratelimit-remaining-requests"] == "0"
        assert seconds(err.headers["x-ratelimit-reset-requests"]) == pytest.approx(60, abs=0.05)
        assert err.headers["x-ratelimit-limit-tokens"] == "1000"
        assert err.retry_after == pytest.approx(6.0, abs=0.05)

    run(harness, body)


def test_a_request_that_can_never_fit(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        subjects = [tenant(tokens_per_minute=1000), user(tokens_per_minute=5000)]
        err = await refused(limiter, subjects, 1001)
        assert "tenant acme may send 1000 tokens per minute" in str(err)
        assert "never fit" in str(err)
        assert err.retry_after is None  # waiting would not help
        # And it took nothing: a full-size request still passes.
        ok = await limiter.admit(subjects, 1000)
        assert ok.headers["x-ratelimit-remaining-tokens"] == "0"

    run(harness, body)


def test_subjects_without_limits_are_free(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        for _ in range(100):
            a = await limiter.admit([tenant(), user()], 10**9)
            assert a.headers == {}
            await a.settle_tokens(5)
            await a.release()

    run(harness, body)


@pytest.mark.parametrize("limit", ["requests_per_minute", "concurrent"])
def test_200_concurrent_admits_against_50(harness: Harness, limit: str) -> None:
    async def main() -> None:
        # Redis: three clients, each with its own pool of 50 connections, so each also has
        # more admits in flight (about 67) than connections; in process: one limiter.
        limiters = [harness.make() for _ in range(3 if harness.kind == "redis" else 1)]
        subjects = [tenant(**{limit: 50})]

        async def one(i: int) -> Admission | None:
            try:
                return await limiters[i % len(limiters)].admit(subjects, 1)
            except RateLimitExceededError:
                return None

        try:
            results = await asyncio.gather(*(one(i) for i in range(200)))
            assert sum(r is not None for r in results) == 50
        finally:
            for limiter in limiters:
                await limiter.aclose()

    asyncio.run(main())


def test_zero_limit_never_admits(harness: Harness) -> None:
    async def body(limiter: RateLimiter) -> None:
        err = await refused(limiter, [user(requests_per_minute=0)])
        assert "may send 0 requests per minute" in str(err)
        assert err.retry_after is None

    run(harness, body)


# -- in process only ------------------------------------------------------------------------


def test_in_process_sweeps_full_buckets() -> None:
    now = [0.0]
    limiter = InProcessRateLimiter(clock=lambda: now[0])

    async def main() -> None:
        for i in range(100):
            await limiter.admit([Subject("user", f"u:acme:{i}", Limits(5, 50))], 10)
        now[0] += 61.0  # every bucket is full again
        await limiter.admit([tenant(requests_per_minute=5)], 0)

    asyncio.run(main())
    assert len(limiter._buckets) == 1  # only the bucket touched after the sweep


def test_format_duration() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(0.25) == "250ms"
    assert format_duration(0.0001) == "1ms"  # rounded up: never "0s" while something waits
    assert format_duration(1) == "1s"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(360) == "6m0s"
    assert format_duration(90.25) == "1m30.25s"
    assert format_duration(3600) == "1h0m0s"


def test_build_rate_limiter_picks_the_store() -> None:
    assert isinstance(build_rate_limiter(None), InProcessRateLimiter)
    limiter = build_rate_limiter("redis://127.0.0.1:1/0")
    assert isinstance(limiter, RedisRateLimiter)
    asyncio.run(limiter.aclose())


# -- Redis only ---------------------------------------------------------------------------

_CHILD = """
import asyncio, importlib.util, sys, time
from turnout.core import RateLimitExceededError

url, prefix, path = sys.argv[1], sys.argv[2], sys.argv[5]
base, n = float(sys.argv[3]), int(sys.argv[4])
# The module by its path: a child skips importing the whole gateway (seconds on a busy box).
spec = importlib.util.spec_from_file_location("limits", path)
limits = importlib.util.module_from_spec(spec)
sys.modules["limits"] = limits
spec.loader.exec_module(limits)
Limits, RedisRateLimiter, Subject = limits.Limits, limits.RedisRateLimiter, limits.Subject

async def main():
    # A frozen clock: nothing refills however long the burst takes on a busy machine.
    limiter = RedisRateLimiter(url, prefix=prefix, clock=lambda: base)
    rpm = [Subject("tenant", "t:rpm", Limits(requests_per_minute=50))]
    conc = [Subject("tenant", "t:conc", Limits(concurrent=50))]
    await limiter.admit([Subject("tenant", "t:warm", Limits(concurrent=1000))], 0)  # connect
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())  # all processes start their bursts together
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def one(subjects):
        try:
            await limiter.admit(subjects, 1)  # never released: slots stay taken
            return 1
        except RateLimitExceededError:
            return 0

    got = await asyncio.gather(*(one(s) for _ in range(n) for s in (rpm, conc)))
    print(sum(got[0::2]), sum(got[1::2]))
    await limiter.aclose()

asyncio.run(main())
"""


def test_three_processes_share_one_limit(redis_url: str) -> None:  # noqa: F811
    prefix = f"test-limits:{uuid.uuid4().hex}:"
    base = time.time()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, redis_url, prefix, str(base), "70", _limits.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdin is not None
            if child.stdout.readline() != "ready\n":
                pytest.fail(f"a child failed to start: {child.communicate()[1]}")
        start_at = time.time() + 0.1
        for child in children:  # the start time to all before waiting on any
            assert child.stdin is not None
            child.stdin.write(f"{start_at}\n")
            child.stdin.flush()
        counts = []
        for child in children:
            out, err = child.communicate(timeout=30)
            assert child.returncode == 0, err
            counts.append([int(x) for x in out.split()])
        # 210 tried against each limit of 50, from three clients in three processes.
        assert sum(c[0] for c in counts) == 50, counts
        assert sum(c[1] for c in counts) == 50, counts
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        _clean(redis_url, prefix)


def test_lease_of_a_crashed_replica_expires(redis_url: str) -> None:  # noqa: F811
    prefix = f"test-limits:{uuid.uuid4().hex}:"
    subjects = [tenant(concurrent=1)]

    async def main() -> None:
        crashed = RedisRateLimiter(redis_url, prefix=prefix, lease_s=0.3)
        await crashed.admit(subjects, 0)
        await crashed.aclose()  # gone without releasing its slot
        other = RedisRateLimiter(redis_url, prefix=prefix, lease_s=0.3)
        try:
            await refused(other, subjects)  # the slot is still held
            await asyncio.sleep(0.4)
            a = await other.admit(subjects, 0)  # its lease expired
            await a.release()
            await (await other.admit(subjects, 0)).release()
        finally:
            await other.aclose()

    try:
        asyncio.run(main())
    finally:
        _clean(redis_url, prefix)


def test_release_removes_the_lease(redis_url: str) -> None:  # noqa: F811
    prefix = f"test-limits:{uuid.uuid4().hex}:"

    async def main() -> None:
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        try:
            a = await limiter.admit([tenant(concurrent=5), user(concurrent=5)], 0)
            client = redis.Redis.from_url(redis_url)
            assert client.zcard(f"{prefix}t:acme:cc") == 1
            await a.release()
            assert client.zcard(f"{prefix}t:acme:cc") == 0
            assert client.zcard(f"{prefix}u:acme:bob:cc") == 0
            client.close()
        finally:
            await limiter.aclose()

    try:
        asyncio.run(main())
    finally:
        _clean(redis_url, prefix)


def test_keys_expire_once_their_buckets_are_full(redis_url: str) -> None:  # noqa: F811
    prefix = f"test-limits:{uuid.uuid4().hex}:"

    async def main() -> None:
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        try:
            await limiter.admit([tenant(requests_per_minute=60)], 0)
        finally:
            await limiter.aclose()

    try:
        asyncio.run(main())
        client = redis.Redis.from_url(redis_url)
        ttl_ms = client.pttl(f"{prefix}t:acme:rq")
        client.close()
        # One request of 60 per minute refills in 1 s; the key lives about that long (+1 s).
        assert 1000 < ttl_ms <= 2000
    finally:
        _clean(redis_url, prefix)


DOWN = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1


def test_redis_down_fails_closed_naming_the_server() -> None:
    async def main() -> None:
        limiter = RedisRateLimiter(DOWN, timeout_s=0.5)
        try:
            with pytest.raises(TurnoutError) as info:
                await limiter.admit([tenant(requests_per_minute=5)], 0)
        finally:
            await limiter.aclose()
        message = str(info.value)
        assert not isinstance(info.value, RateLimitExceededError)
        assert "127.0.0.1:1" in message
        assert "hunter2" not in message
        assert "governance.redis_url" in message

    asyncio.run(main())


def test_redis_down_fails_open_when_asked() -> None:
    async def main() -> None:
        limiter = RedisRateLimiter(DOWN, timeout_s=0.5, fail_open=True)
        try:
            a = await limiter.admit([tenant(requests_per_minute=5)], 0)
            assert a.headers == {}
            await a.settle_tokens(3)
            await a.release()
        finally:
            await limiter.aclose()

    asyncio.run(main())


def test_no_round_trip_without_limits() -> None:
    async def main() -> None:
        # Fail closed against a dead server, yet admitted: nothing was asked of Redis.
        limiter = RedisRateLimiter(DOWN, timeout_s=0.5)
        try:
            a = await limiter.admit([tenant(), user()], 100)
            assert a.headers == {}
        finally:
            await limiter.aclose()

    asyncio.run(main())
