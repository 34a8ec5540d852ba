"""The cascade: climb a route's ladder until an answer passes its checks.

Within a tier: the primary deployment, retried on retryable errors (backoff honouring
Retry-After), then its fallbacks on other providers; a deployment whose breaker is open
is skipped. An answer that fails a check, or a tier whose every deployment failed, moves
the request to the next tier. Every attempt is recorded with its outcome and cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from turnout.core import ChatRequest, ProviderError, Tier, UpstreamTimeout, Usage
from turnout.providers import Completion, Delta, ProviderCall, StreamEnd, StreamEvent

from ._checks import Check, first_failure
from ._intake import RequestFacts
from ._resilience import Deadline, DeadlineExceededError, backoff_delay
from ._upstreams import Upstream, Upstreams, settle

_T = TypeVar("_T")


@dataclass
class Attempt:
    tier: str
    deployment: str
    outcome: str  # ok | escalated | error | skipped
    reason: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    usage: Usage | None = None
    cost: Decimal = Decimal(0)
    status: int | None = None

    def label(self) -> str:
        return f"{self.tier} {self.deployment} {self.reason or self.outcome}"


@dataclass
class Outcome:
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum((a.cost for a in self.attempts), Decimal(0))


@dataclass
class Answer(Outcome):
    completion: Completion | None = None
    tier: str = ""
    upstream: Upstream | None = None
    check_failed: str | None = None  # the last tier's answer failed a check; sent anyway


@dataclass
class OpenStream(Outcome):
    """A stream past its commit point: `head` is buffered, `rest` yields what follows."""

    head: list[Delta] = field(default_factory=list)
    rest: AsyncIterator[StreamEvent] | None = None
    end: StreamEnd | None = None
    tier: str = ""
    upstream: Upstream | None = None
    started: float = 0.0
    ttft_s: float | None = None


class AllAttemptsFailedError(ProviderError):
    """Every tier and fallback failed; carries the attempts. 504 if the last was a timeout."""

    def __init__(self, outcome: Outcome, last: Exception) -> None:
        status = 504 if isinstance(last, UpstreamTimeout | DeadlineExceededError) else 502
        tried = ", ".join(a.label() for a in outcome.attempts) or "no deployment was available"
        super().__init__(f"no upstream answered: {last} (attempts: {tried})", status=status)
        self.outcome = outcome
        self.last = last


def _has_payload(chunk: dict[str, object]) -> bool:
    for choice in chunk.get("choices") or ():  # type: ignore[attr-defined]
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return False


def _refusal_in(chunk: dict[str, object]) -> bool:
    return any((c.get("delta") or {}).get("refusal") for c in chunk.get("choices") or ())  # type: ignore[attr-defined]


class Cascade:
    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams

    def _candidates(self, tier: Tier, outcome: Outcome) -> Iterator[Upstream]:
        # Lazy: a breaker is asked only when its deployment is about to be called, so a
        # half-open breaker's single probe is not spent on a fallback that is never tried.
        for dep in tier.deployments:
            upstream = self.upstreams.get(dep)
            if upstream.breaker.allow():
                yield upstream
            else:
                outcome.attempts.append(Attempt(tier.name, dep.label, "skipped", "circuit_open"))

    async def _with_retries(
        self,
        tier: Tier,
        upstream: Upstream,
        deadline: Deadline,
        outcome: Outcome,
        call: Callable[[float], Awaitable[_T]],
    ) -> tuple[_T, float]:
        """`call(timeout)` until it succeeds, retrying retryable errors; returns its result
        and the start time of the successful try. Raises the last ProviderError."""
        error: ProviderError | None = None
        for retry in range(upstream.settings.retry.attempts + 1):
            if error is not None:
                delay = backoff_delay(retry - 1, upstream.settings.retry, error.retry_after)
                if delay >= deadline.remaining():
                    raise DeadlineExceededError(
                        f"the deadline leaves no time to retry after: {error}"
                    )
                await asyncio.sleep(delay)
            remaining = deadline.remaining()
            if remaining <= 0:
                raise DeadlineExceededError("the request deadline passed")
            started = time.monotonic()
            try:
                value = await call(min(upstream.settings.timeout_s, remaining))
            except ProviderError as exc:
                error = exc
                upstream.breaker.record_failure()
                outcome.attempts.append(
                    Attempt(
                        tier.name,
                        upstream.deployment.label,
                        "error",
                        type(exc).__name__,
                        time.monotonic() - started,
                        status=exc.status,
                    )
                )
                if not exc.retryable:
                    break
                continue
            upstream.breaker.record_success()
            return value, started
        assert error is not None
        raise error

    async def answer(
        self,
        ladder: Sequence[Tier],
        request: ChatRequest,
        facts: RequestFacts,
        checks: Sequence[Check],
        deadline: Deadline,
    ) -> Answer:
        result = Answer()
        last_error: Exception = DeadlineExceededError("no deployment was available")
        best_effort: Answer | None = None  # the last answer that failed a check
        try:
            for depth, tier in enumerate(ladder):
                final = depth == len(ladder) - 1
                for upstream in self._candidates(tier, result):
                    model = upstream.deployment.model

                    async def call(
                        timeout: float, upstream: Upstream = upstream, model: str = model
                    ) -> Completion:
                        return await upstream.provider.complete(
                            ProviderCall(request, model, timeout)
                        )

                    try:
                        completion, started = await self._with_retries(
                            tier, upstream, deadline, result, call
                        )
                    except ProviderError as exc:
                        last_error = exc
                        continue  # fall back to the tier's next deployment
                    usage, spent = settle(
                        upstream.card, completion.usage, facts, completion.image_tokens_reported
                    )
                    reason = first_failure(checks, completion, request)
                    outcome = "ok" if reason is None else ("check_failed" if final else "escalated")
                    result.attempts.append(
                        Attempt(
                            tier.name,
                            upstream.deployment.label,
                            outcome,
                            reason,
                            time.monotonic() - started,
                            usage=usage,
                            cost=spent,
                        )
                    )
                    result.completion, result.tier, result.upstream = (
                        completion,
                        tier.name,
                        upstream,
                    )
                    result.check_failed = reason
                    if reason is None or final:
                        return result
                    best_effort = Answer(
                        completion=completion,
                        tier=tier.name,
                        upstream=upstream,
                        check_failed=reason,
                    )
                    break  # the answer failed a check: climb
        except DeadlineExceededError as exc:
            last_error = exc
        if best_effort is not None:
            result.completion, result.tier = best_effort.completion, best_effort.tier
            result.upstream, result.check_failed = best_effort.upstream, best_effort.check_failed
            return result
        raise AllAttemptsFailedError(result, last_error)

    async def open_stream(
        self,
        ladder: Sequence[Tier],
        request: ChatRequest,
        facts: RequestFacts,
        deadline: Deadline,
    ) -> OpenStream:
        """A stream past its commit point (its first content), having escalated on errors,
        an empty answer or a refusal until then. Nothing has reached the client yet."""
        result = OpenStream()
        last_error: Exception = DeadlineExceededError("no deployment was available")
        try:
            for depth, tier in enumerate(ladder):
                final = depth == len(ladder) - 1
                for upstream in self._candidates(tier, result):
                    model = upstream.deployment.model

                    async def call(
                        timeout: float, upstream: Upstream = upstream, model: str = model
                    ) -> _Head:
                        return await _read_head(
                            upstream.provider.stream(ProviderCall(request, model, timeout))
                        )

                    try:
                        head, started = await self._with_retries(
                            tier, upstream, deadline, result, call
                        )
                    except ProviderError as exc:
                        last_error = exc
                        continue
                    ttft = (
                        None if head.first_payload_at is None else head.first_payload_at - started
                    )
                    reason = head.reason
                    if reason is not None and not final:
                        await head.close()
                        usage, spent = (None, Decimal(0))
                        if head.end is not None:
                            usage, spent = settle(
                                upstream.card, head.end.usage, facts, head.end.image_tokens_reported
                            )
                        result.attempts.append(
                            Attempt(
                                tier.name,
                                upstream.deployment.label,
                                "escalated",
                                reason,
                                time.monotonic() - started,
                                ttft,
                                usage,
                                spent,
                            )
                        )
                        break  # climb
                    result.head, result.rest, result.end = head.deltas, head.events, head.end
                    result.tier, result.upstream = tier.name, upstream
                    result.started, result.ttft_s = started, ttft
                    return result
        except DeadlineExceededError as exc:
            last_error = exc
        raise AllAttemptsFailedError(result, last_error)


@dataclass
class _Head:
    events: AsyncIterator[StreamEvent]
    deltas: list[Delta]
    end: StreamEnd | None
    first_payload_at: float | None
    reason: str | None  # why this stream should not be committed, if it should not

    async def close(self) -> None:
        closer = getattr(self.events, "aclose", None)
        if closer is not None:
            await closer()


async def _read_head(events: AsyncIterator[StreamEvent]) -> _Head:
    """Read up to the first chunk with content; a ProviderError before it propagates."""
    deltas: list[Delta] = []
    async for event in events:
        if isinstance(event, StreamEnd):
            why = "refusal" if event.finish_reason == "content_filter" else "empty"
            return _Head(events, deltas, event, None, why)
        deltas.append(event)
        if _has_payload(event.chunk):
            refused = "refusal" if _refusal_in(event.chunk) else None
            return _Head(events, deltas, None, time.monotonic(), refused)
    return _Head(events, deltas, None, None, "empty")
