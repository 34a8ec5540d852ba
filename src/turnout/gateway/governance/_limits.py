"""Rate limits per tenant and per user: requests per minute, tokens per minute and requests in
flight, kept in process (one gateway) or on Redis (several replicas sharing the counters).

Algorithm: a token bucket per subject and per rate. The bucket of a limit of N per minute
holds at most N, starts full and refills continuously at N/60 per second. A request takes 1
from the requests bucket and its token estimate from the tokens bucket; it is admitted only
when every bucket of every subject has enough (all or nothing: either every counter moves or
none does). So a client may burst up to N at once and then sustains N per minute.
`settle_tokens(actual)` replaces the estimate with the real count: the difference is put back
(capped at N) or taken (the bucket may go below zero, which delays the next requests).
Concurrency is a count of admitted, unreleased requests per subject.

Both implementations run exactly this algorithm. The in-process one reads an injectable
monotonic clock and never awaits between check and commit, so it is safe under asyncio. The
Redis one runs one Lua script per admit over every key of every subject (atomic, no
read-then-write race across replicas) and reads time from the Redis server (`TIME`), so the
replicas' clocks do not matter. Its concurrency slots are leases in a sorted set, scored by
their expiry: a replica that crashes without releasing loses its slots after `lease_s`. A
request that runs longer than `lease_s` loses its slot too (the limit then under-counts it),
so `lease_s` should exceed the longest request (the default is 5 minutes).

Headers (as OpenAI sends them): `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
`x-ratelimit-reset-requests` (time until the bucket is full again, as "1s", "6m0s", "250ms")
and the `-tokens` variants. Each pair comes from the tightest subject for that rate (the
fewest remaining after this request). On refusal the refusing limit's numbers replace those
of its rate, and `retry_after` is the seconds until it would admit this request. A request
whose token estimate alone exceeds a tokens-per-minute limit can never be admitted: its error
says so and carries no `retry_after`. A concurrency refusal has no OpenAI header; its
`retry_after` is a 1 s hint (a slot frees whenever a request finishes).

Redis failures: with `fail_open=False` (the default) an admit raises `TurnoutError` naming
the server (host:port, never the password) and what to do, so nothing passes unlimited;
with `fail_open=True` the request is admitted without limits and a warning is logged (at most
every 10 s), for deployments that put availability first (budgets still hold, through the
ledger). `release` and `settle_tokens` never raise for Redis failures: they run after the
work is done, often in `finally`; a lost release frees itself when its lease expires.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from turnout.core import RateLimitExceededError, TurnoutError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "Admission",
    "InProcessRateLimiter",
    "Limits",
    "RateLimiter",
    "RedisRateLimiter",
    "Subject",
    "build_rate_limiter",
    "format_duration",
]

log = logging.getLogger("turnout.gateway.governance")

Clock = Callable[[], float]

# Without an OpenAI header for concurrency, a refusal hints a short wait.
_CONCURRENCY_RETRY_S = 1.0


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute", "concurrent"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be zero or more, not {value}")

    @property
    def any(self) -> bool:
        return (
            self.requests_per_minute is not None
            or self.tokens_per_minute is not None
            or self.concurrent is not None
        )


@dataclass(frozen=True)
class Subject:
    kind: str  # "tenant" or "user", used in messages
    key: str  # storage key, e.g. "t:acme" or "u:acme:bob"
    limits: Limits

    @property
    def name(self) -> str:
        """The key for people: "t:acme" -> "acme", "u:acme:bob" -> "acme/bob"."""
        parts = self.key.split(":")
        return "/".join(parts[1:]) if len(parts) > 1 else self.key


class Admission:
    """An admitted request: its headers, and the slots and tokens it holds until settled."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.headers: dict[str, str] = dict(headers or {})

    async def release(self) -> None:
        """Free the request's concurrency slots. Idempotent, safe after errors."""

    async def settle_tokens(self, actual: int) -> None:
        """Replace the admitted token estimate with `actual`; repeating a call changes nothing."""


class RateLimiter(Protocol):
    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Admission: ...

    async def aclose(self) -> None: ...


# -- the algorithm, shared by both implementations -----------------------------------------


def _refill(level: float, elapsed_s: float, capacity: int) -> float:
    return min(float(capacity), level + max(0.0, elapsed_s) * capacity / 60.0)


def _wait_s(level: float, need: float, capacity: int) -> float:
    """Seconds until a bucket at `level` holds `need`."""
    return 0.0 if level >= need else (need - level) * 60.0 / capacity


def format_duration(seconds: float) -> str:
    """A duration as OpenAI writes it (Go's style): "250ms", "1s", "1.5s", "6m0s", "1h0m0s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class _State:
    """One subject's counters as read at admission (before this request is counted)."""

    requests: float | None  # requests bucket level (None: no such limit)
    tokens: float | None
    in_flight: int | None


def _check_never_fits(subjects: Sequence[Subject], tokens: int) -> None:
    if tokens < 0:
        raise ValueError(f"a token estimate must be zero or more, not {tokens}")
    for s in subjects:
        tpm = s.limits.tokens_per_minute
        if tpm is not None and tokens > tpm:
            raise RateLimitExceededError(
                f"rate limit: {s.kind} {s.name} may send {tpm} tokens per minute and this "
                f"request alone needs about {tokens}, so it can never fit; shorten the input "
                f"or lower max_tokens",
                retry_after=None,
                headers=_rate_headers("tokens", tpm, tpm, 0.0),
            )


def _rate_headers(rate: str, limit: int, level: float, reset_s: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{rate}": str(limit),
        f"x-ratelimit-remaining-{rate}": str(max(0, math.floor(level + 1e-9))),
        f"x-ratelimit-reset-{rate}": format_duration(reset_s),
    }


def _headers(subjects: Sequence[Subject], levels: Sequence[_State]) -> dict[str, str]:
    """Headers of the tightest subject per rate, from bucket levels (after any charge)."""
    headers: dict[str, str] = {}
    for rate in ("requests", "tokens"):
        best: tuple[float, float, int] | None = None  # level, reset, limit
        for s, st in zip(subjects, levels, strict=True):
            limit = (
                s.limits.requests_per_minute if rate == "requests" else s.limits.tokens_per_minute
            )
            level = st.requests if rate == "requests" else st.tokens
            if limit is None or level is None or limit == 0:
                continue
            reset = _wait_s(level, limit, limit)
            if best is None or (level, -reset) < (best[0], -best[1]):
                best = (level, reset, limit)
        if best is not None:
            headers.update(_rate_headers(rate, best[2], best[0], best[1]))
    return headers


def _refusal(
    subjects: Sequence[Subject], states: Sequence[_State], tokens: int
) -> RateLimitExceededError | None:
    """The error for the limit that makes this request wait longest, or None if all admit."""
    worst: tuple[float, str, dict[str, str]] | None = None
    for s, st in zip(subjects, states, strict=True):
        lim = s.limits
        found: list[tuple[float, str, dict[str, str]]] = []
        rpm, tpm = lim.requests_per_minute, lim.tokens_per_minute
        if rpm is not None and st.requests is not None and st.requests < 1:
            wait = math.inf if rpm == 0 else _wait_s(st.requests, 1, rpm)
            found.append(
                (
                    wait,
                    f"may send {rpm} requests per minute",
                    _rate_headers("requests", rpm, st.requests, _wait_s(st.requests, rpm, rpm)),
                )
            )
        if tpm is not None and st.tokens is not None and st.tokens < tokens:
            wait = _wait_s(st.tokens, tokens, tpm) if tpm else math.inf
            found.append(
                (
                    wait,
                    f"may send {tpm} tokens per minute and this request needs about {tokens} "
                    f"({max(0, math.floor(st.tokens))} left)",
                    _rate_headers("tokens", tpm, st.tokens, _wait_s(st.tokens, tpm, tpm)),
                )
            )
        conc = lim.concurrent
        if conc is not None and st.in_flight is not None and st.in_flight >= conc:
            found.append(
                (
                    _CONCURRENCY_RETRY_S if conc else math.inf,
                    f"may have {conc} requests in flight at once",
                    {},
                )
            )
        for wait, what, hdrs in found:
            if worst is None or wait > worst[0]:
                worst = (wait, f"{s.kind} {s.name} {what}", hdrs)
    if worst is None:
        return None
    wait, what, refusing = worst
    headers = {**_headers(subjects, states), **refusing}
    if math.isinf(wait):  # a limit of zero: retrying never helps
        return RateLimitExceededError(f"rate limit: {what}", retry_after=None, headers=headers)
    shown = math.ceil(wait * 10) / 10
    return RateLimitExceededError(
        f"rate limit: {what}; retry in {shown:.1f} s", retry_after=wait, headers=headers
    )


def _charged(states: Sequence[_State], tokens: int) -> list[_State]:
    return [
        _State(
            None if st.requests is None else st.requests - 1,
            None if st.tokens is None else st.tokens - tokens,
            st.in_flight,
        )
        for st in states
    ]


# -- in process ----------------------------------------------------------------------------


@dataclass
class _Bucket:
    level: float
    at: float


class InProcessRateLimiter:
    """Limits for one gateway process; `clock` is monotonic seconds (injectable for tests)."""

    _SWEEP_S = 60.0

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._in_flight: dict[str, int] = {}
        self._swept = clock()

    def _level(self, key: str, rate: str, capacity: int, now: float) -> float:
        b = self._buckets.get((key, rate))
        return float(capacity) if b is None else _refill(b.level, now - b.at, capacity)

    def _set(self, key: str, rate: str, level: float, now: float) -> None:
        self._buckets[(key, rate)] = _Bucket(level, now)

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Admission:
        _check_never_fits(subjects, tokens)
        limited = [s for s in subjects if s.limits.any]
        if not limited:
            return Admission()
        # From here to the return there is no await: check and commit are one step for asyncio.
        now = self._clock()
        self._sweep(now)
        states = [self._state(s, now) for s in limited]
        refusal = _refusal(limited, states, tokens)
        if refusal is not None:
            raise refusal
        after = _charged(states, tokens)
        slots: list[str] = []
        for s, st in zip(limited, after, strict=True):
            if st.requests is not None:
                self._set(s.key, "requests", st.requests, now)
            if st.tokens is not None:
                self._set(s.key, "tokens", st.tokens, now)
            if s.limits.concurrent is not None:
                self._in_flight[s.key] = self._in_flight.get(s.key, 0) + 1
                slots.append(s.key)
        return _InProcessAdmission(self, limited, tokens, slots, _headers(limited, after))

    def _state(self, s: Subject, now: float) -> _State:
        lim = s.limits
        return _State(
            None
            if lim.requests_per_minute is None
            else self._level(s.key, "requests", lim.requests_per_minute, now),
            None
            if lim.tokens_per_minute is None
            else self._level(s.key, "tokens", lim.tokens_per_minute, now),
            None if lim.concurrent is None else self._in_flight.get(s.key, 0),
        )

    def _adjust_tokens(self, subjects: Sequence[Subject], delta: int) -> None:
        now = self._clock()
        for s in subjects:
            tpm = s.limits.tokens_per_minute
            if tpm is not None:
                level = self._level(s.key, "tokens", tpm, now)
                self._set(s.key, "tokens", min(float(tpm), level - delta), now)

    def _release(self, keys: Sequence[str]) -> None:
        for key in keys:
            n = self._in_flight.get(key, 0) - 1
            if n > 0:
                self._in_flight[key] = n
            else:
                self._in_flight.pop(key, None)

    def _sweep(self, now: float) -> None:
        # Forget full buckets now and then, so idle users cost no memory.
        if now - self._swept < self._SWEEP_S:
            return
        self._swept = now
        # A bucket untouched for a minute and not in debt has refilled to its capacity.
        full = [k for k, b in self._buckets.items() if now - b.at >= 60.0 and b.level >= 0]
        for k in full:
            del self._buckets[k]

    async def aclose(self) -> None:
        self._buckets.clear()
        self._in_flight.clear()


class _InProcessAdmission(Admission):
    def __init__(
        self,
        limiter: InProcessRateLimiter,
        subjects: Sequence[Subject],
        tokens: int,
        slots: Sequence[str],
        headers: dict[str, str],
    ) -> None:
        super().__init__(headers)
        self._limiter = limiter
        self._subjects = list(subjects)
        self._charged = tokens
        self._slots = list(slots)

    async def release(self) -> None:
        slots, self._slots = self._slots, []
        self._limiter._release(slots)

    async def settle_tokens(self, actual: int) -> None:
        if actual < 0:
            raise ValueError(f"a token count must be zero or more, not {actual}")
        delta, self._charged = actual - self._charged, actual
        if delta:
            self._limiter._adjust_tokens(self._subjects, delta)


# -- Redis ---------------------------------------------------------------------------------

# Shared by the scripts: now in ms (the server's clock, or the test clock in ARGV[1]) and a
# bucket's level.
_LUA_COMMON = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function level_of(key, cap)
  local v = redis.call('HMGET', key, 'l', 't')
  if not v[1] then return cap end
  local dt = now - tonumber(v[2])
  if dt < 0 then dt = 0 end
  local l = tonumber(v[1]) + dt * cap / 60000
  if l > cap then l = cap end
  return l
end
local function store(key, level, cap)
  if cap <= 0 then return end
  redis.call('HSET', key, 'l', string.format('%.6f', level), 't', string.format('%.3f', now))
  -- the key lives until its bucket is full again; a missing key reads as full
  redis.call('PEXPIRE', key, math.ceil((cap - level) * 60000 / cap) + 1000)
end
"""

# KEYS: per subject its requests, tokens and leases keys.
# ARGV: now_ms ('' = the server's), tokens, lease_ms, lease_id, then per subject rpm, tpm,
# concurrent ('' = none).
# Returns {ok, then per subject: requests level, tokens level, in flight} as strings ('' = none).
_LUA_ADMIT = (
    _LUA_COMMON
    + """
local tokens = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local lease_id = ARGV[4]
local n = #KEYS / 3
local out = {1}
local st = {}
for i = 1, n do
  local rq, tk, cc = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local rpm, tpm, conc = tonumber(ARGV[3*i+2]), tonumber(ARGV[3*i+3]), tonumber(ARGV[3*i+4])
  local s = {rpm = rpm, tpm = tpm, conc = conc}
  if rpm then
    s.rl = level_of(rq, rpm)
    if s.rl < 1 then out[1] = 0 end
  end
  if tpm then
    s.tl = level_of(tk, tpm)
    if s.tl < tokens then out[1] = 0 end
  end
  if conc then
    redis.call('ZREMRANGEBYSCORE', cc, '-inf', now)
    s.c = redis.call('ZCARD', cc)
    if s.c >= conc then out[1] = 0 end
  end
  st[i] = s
end
for i = 1, n do
  local s = st[i]
  out[#out+1] = s.rl and string.format('%.17g', s.rl) or ''
  out[#out+1] = s.tl and string.format('%.17g', s.tl) or ''
  out[#out+1] = s.c and tostring(s.c) or ''
end
if out[1] == 0 then return out end
for i = 1, n do
  local s = st[i]
  if s.rpm then store(KEYS[3*i-2], s.rl - 1, s.rpm) end
  if s.tpm then store(KEYS[3*i-1], s.tl - tokens, s.tpm) end
  if s.conc then
    redis.call('ZADD', KEYS[3*i], now + lease_ms, lease_id)
    redis.call('PEXPIRE', KEYS[3*i], math.ceil(lease_ms) + 1000)
  end
end
return out
"""
)

# KEYS: tokens keys. ARGV: now_ms ('' = server), delta, then each key's tokens-per-minute limit.
_LUA_SETTLE = (
    _LUA_COMMON
    + """
local delta = tonumber(ARGV[2])
for i = 1, #KEYS do
  local cap = tonumber(ARGV[i+2])
  local l = level_of(KEYS[i], cap) - delta
  if l > cap then l = cap end
  store(KEYS[i], l, cap)
end
return 1
"""
)


def _location(url: str) -> str:
    """Where a Redis URL points, without user or password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return "(an unparsable URL)"


class RedisRateLimiter:
    """Limits shared by every gateway replica through one Redis server.

    `prefix` namespaces the keys; `lease_s` is how long a concurrency slot outlives a replica
    that never released it; `timeout_s` bounds each Redis call and each wait for one of the
    `max_connections` pooled connections. `clock` is for tests only (a
    fake clock in seconds, read here and sent with each script): every replica must share one
    clock, which is why the default is the Redis server's.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "turnout:rl:",
        lease_s: float = 300.0,
        fail_open: bool = False,
        timeout_s: float = 2.0,
        max_connections: int = 50,
        clock: Clock | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, not {lease_s}")
        import redis.asyncio as aioredis

        self._where = _location(url)
        # A blocking pool: a burst larger than the pool waits for a connection (up to
        # timeout_s) instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._redis: Redis = aioredis.Redis.from_pool(pool)
        self._prefix = prefix
        self._lease_ms = lease_s * 1000
        self._fail_open = fail_open
        self._clock = clock
        self._warned = -math.inf
        self._admit: AsyncScript = self._redis.register_script(_LUA_ADMIT)
        self._settle: AsyncScript = self._redis.register_script(_LUA_SETTLE)

    def _now_ms(self) -> str:
        return repr(self._clock() * 1000) if self._clock else ""

    def _keys(self, s: Subject) -> list[str]:
        base = self._prefix + s.key
        return [base + ":rq", base + ":tk", base + ":cc"]

    def _failure(self, exc: Exception, doing: str) -> TurnoutError:
        return TurnoutError(
            f"rate limits: Redis at {self._where} failed while {doing} "
            f"({type(exc).__name__}: {exc}); check that it runs and is reachable, fix "
            f"governance.redis_url (TURNOUT_GOVERNANCE__REDIS_URL) or unset it to keep limits "
            f"in process"
        )

    def _warn(self, error: TurnoutError) -> None:
        now = time.monotonic()
        if now - self._warned >= 10.0:
            self._warned = now
            log.warning("%s", error)

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Admission:
        from redis.exceptions import RedisError

        _check_never_fits(subjects, tokens)
        limited = [s for s in subjects if s.limits.any]
        if not limited:
            return Admission()  # nothing to count: no round trip
        lease_id = uuid.uuid4().hex
        keys = [k for s in limited for k in self._keys(s)]
        args: list[str] = [self._now_ms(), str(tokens), repr(self._lease_ms), lease_id]
        for s in limited:
            lim = s.limits
            args += [
                "" if v is None else str(v)
                for v in (lim.requests_per_minute, lim.tokens_per_minute, lim.concurrent)
            ]
        try:
            raw: list[Any] = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            error = self._failure(exc, "admitting a request")
            if self._fail_open:
                self._warn(error)
                return Admission()
            raise error from exc
        states = [
            _State(
                float(raw[1 + 3 * i]) if raw[1 + 3 * i] != "" else None,
                float(raw[2 + 3 * i]) if raw[2 + 3 * i] != "" else None,
                int(raw[3 + 3 * i]) if raw[3 + 3 * i] != "" else None,
            )
            for i in range(len(limited))
        ]
        if int(raw[0]) != 1:
            # _refusal repeats the script's tests on the same doubles (sent as %.17g, exact),
            # so it finds the limit; the generic error only guards against a future mismatch.
            raise _refusal(limited, states, tokens) or RateLimitExceededError(
                "rate limit: a limit has no room for this request; retry in 1.0 s",
                retry_after=1.0,
                headers=_headers(limited, states),
            )
        slots = [self._keys(s)[2] for s in limited if s.limits.concurrent is not None]
        return _RedisAdmission(
            self, limited, tokens, slots, lease_id, _headers(limited, _charged(states, tokens))
        )

    async def _adjust_tokens(self, subjects: Sequence[Subject], delta: int) -> None:
        from redis.exceptions import RedisError

        keyed = [s for s in subjects if s.limits.tokens_per_minute is not None]
        if not keyed:
            return
        try:
            await self._settle(
                keys=[self._keys(s)[1] for s in keyed],
                args=[self._now_ms(), str(delta)]
                + [str(s.limits.tokens_per_minute) for s in keyed],
            )
        except (RedisError, OSError) as exc:
            self._warn(self._failure(exc, "settling tokens"))

    async def _release(self, slots: Sequence[str], lease_id: str) -> None:
        from redis.exceptions import RedisError

        if not slots:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in slots:
                    pipe.zrem(key, lease_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # The lease expires on its own after lease_s.
            self._warn(self._failure(exc, "releasing a concurrency slot"))

    async def aclose(self) -> None:
        await self._redis.aclose()


class _RedisAdmission(Admission):
    def __init__(
        self,
        limiter: RedisRateLimiter,
        subjects: Sequence[Subject],
        tokens: int,
        slots: Sequence[str],
        lease_id: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(headers)
        self._limiter = limiter
        self._subjects = list(subjects)
        self._charged = tokens
        self._slots = list(slots)
        self._lease_id = lease_id

    async def release(self) -> None:
        slots, self._slots = self._slots, []
        await self._limiter._release(slots, self._lease_id)

    async def settle_tokens(self, actual: int) -> None:
        if actual < 0:
            raise ValueError(f"a token count must be zero or more, not {actual}")
        delta, self._charged = actual - self._charged, actual
        if delta:
            await self._limiter._adjust_tokens(self._subjects, delta)


def build_rate_limiter(
    redis_url: str | None, *, lease_s: float = 300.0, fail_open: bool = False
) -> RateLimiter:
    """Redis-backed limits when a URL is given (several replicas), else in process."""
    if redis_url:
        return RedisRateLimiter(redis_url, lease_s=lease_s, fail_open=fail_open)
    return InProcessRateLimiter()
