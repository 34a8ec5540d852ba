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
from typing import Any, Protocol, TypeVar

from turnout.core import ChatRequest, ProviderError, Tier, UpstreamTimeout, Usage
from turnout.providers import Completion, Delta, ProviderCall, StreamEnd, StreamEvent

from ._checks import Check, first_failure
from ._intake import RequestFacts
from ._resilience import Deadline, DeadlineExceededError, backoff_delay
from ._upstreams import Upstream, Upstreams, settle

_T = TypeVar("_T")


class Meter(Protocol):
    """Reserves each attempt's worst-case cost before its call, settles it after."""

    async def reserve(self, tier: str, upstream: Upstream) -> Any: ...

    async def settle(
        self,
        reservation: Any,
        usage: Usage,
        cost: Decimal,
        *,
        outcome: str,
        reason: str | None = None,
        latency_s: float | None = None,
        ttft_s: float | None = None,
    ) -> None: ...

    async def charge_reserved(self, reservation: Any, *, outcome: str, reason: str) -> None: ...

    async def release(
        self,
        reservation: Any,
        *,
        outcome: str,
        reason: str | None = None,
        latency_s: float | None = None,
    ) -> None: ...


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
    reservation: Any = None


class AllAttemptsFailedError(ProviderError):
    """Every tier and fallback failed; carries the attempts. 504 if the last was a timeout."""

    def __init__(self, outcome: Outcome, last: Exception) -> None:
        status = 504 if isinstance(last, UpstreamTimeout | DeadlineExceededError) else 502
        tried = ", ".join(a.label() for a in outcome.attempts) or "no deployment was available"
        super().__init__(f"no upstream answered: {last} (attempts: {tried})", status=status)
        self.outcome = outcome
        self.last = last


_detached: set[asyncio.Task[None]] = set()


def detach(work: Awaitable[None]) -> None:
    async def run() -> None:
        await work

    task = asyncio.get_running_loop().create_task(run())
    _detached.add(task)  # keep a reference until it finishes
    task.add_done_callback(_detached.discard)


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
        meter: Meter,
        call: Callable[[float], Awaitable[_T]],
    ) -> tuple[_T, float, Any]:
        """`call(timeout)` until it succeeds, retrying retryable errors; returns its result,
        the start time of the successful try and its reservation (each try reserves its
        worst case first; a failed try releases it). Raises the last ProviderError."""
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
            reservation = await meter.reserve(tier.name, upstream)
            started = time.monotonic()
            try:
                value = await call(min(upstream.settings.timeout_s, remaining))
            except asyncio.CancelledError:
                # The provider may have served it: charge the worst case, from a task of
                # its own since this one is being cancelled.
                detach(meter.charge_reserved(reservation, outcome="cancelled", reason="cancelled"))
                raise
            except ProviderError as exc:
                error = exc
                upstream.breaker.record_failure()
                await meter.release(
                    reservation,
                    outcome="error",
                    reason=type(exc).__name__,
                    latency_s=time.monotonic() - started,
                )
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
            return value, started, reservation
        assert error is not None
        raise error

    async def answer(
        self,
        ladder: Sequence[Tier],
        request: ChatRequest,
        facts: RequestFacts,
        checks: Sequence[Check],
        deadline: Deadline,
        meter: Meter,
        asked: ChatRequest | None = None,
        stages: Any = None,
    ) -> Answer:
        """`asked` is the request as the client sent it, for the checks (a truncation at
        an output cap the gateway added, not the client, still escalates)."""
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
                        completion, started, reservation = await self._with_retries(
                            tier, upstream, deadline, result, meter, call
                        )
                    except ProviderError as exc:
                        last_error = exc
                        continue  # fall back to the tier's next deployment
                    usage, spent = settle(
                        upstream.card, completion.usage, facts, completion.image_tokens_reported
                    )
                    if stages is not None:
                        with stages.time("checks"):
                            reason = first_failure(checks, completion, asked or request)
                    else:
                        reason = first_failure(checks, completion, asked or request)
                    outcome = "ok" if reason is None else ("check_failed" if final else "escalated")
                    await meter.settle(
                        reservation,
                        usage,
                        spent,
                        outcome=outcome,
                        reason=reason,
                        latency_s=time.monotonic() - started,
                    )
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
        meter: Meter,
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
                        head, started, reservation = await self._with_retries(
                            tier, upstream, deadline, result, meter, call
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
                            await meter.settle(
                                reservation,
                                usage,
                                spent,
                                outcome="escalated",
                                reason=reason,
                                latency_s=time.monotonic() - started,
                                ttft_s=ttft,
                            )
                        else:  # closed before its usage arrived: the worst case bounds it
                            await meter.charge_reserved(
                                reservation, outcome="escalated", reason=f"{reason}, unmetered"
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
                    result.reservation = reservation
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
