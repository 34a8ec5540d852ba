"""Retries with backoff that honour Retry-After, a circuit breaker per deployment, and
the request's overall deadline. Durations come from a monotonic clock."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from turnout.core import CircuitSettings, RetrySettings, TurnoutError

Clock = Callable[[], float]


class DeadlineExceededError(TurnoutError):
    """The request's overall deadline passed before an answer was accepted (504)."""


@dataclass
class Deadline:
    seconds: float
    clock: Clock = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def expired(self) -> bool:
        return self.remaining() <= 0


def backoff_delay(
    retry: int, policy: RetrySettings, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Seconds before retry number `retry` (0-based): the upstream's Retry-After when it
    gave one, else exponential backoff with full jitter, capped."""
    if retry_after is not None:
        return min(retry_after, policy.max_delay_s)
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2**retry))
    return (rng or random).uniform(0, ceiling)


class CircuitBreaker:
    """Closed until `failures` failures land within `window_s`; then open for `cooldown_s`;
    then half-open: one probe call decides whether it closes or opens again."""

    def __init__(self, policy: CircuitSettings, clock: Clock = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probe_at: float | None = None  # when the half-open probe was let through

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.policy.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        now = self._clock()
        # One probe at a time; a probe that never reported back (a cancelled request)
        # stops blocking the next one after another cooldown.
        if state == "half_open" and (
            self._probe_at is None or now - self._probe_at >= self.policy.cooldown_s
        ):
            self._probe_at = now
            return True
        return False

    def record_success(self) -> None:
        self._failures.clear()
        self._opened_at = None
        self._probe_at = None

    def record_failure(self) -> None:
        now = self._clock()
        if self._probe_at is not None or self.state == "half_open":
            self._opened_at, self._probe_at = now, None
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.policy.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.policy.failures:
            self._opened_at = now
            self._failures.clear()
