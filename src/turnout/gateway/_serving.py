"""Serving one chat completion: parse, route, run the cascade, respond with headers.

Plain classes callable without HTTP details beyond the body bytes and a request id;
the FastAPI routes in `_app.py` are thin shells over `ChatService`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from turnout.core import ChatRequest, ProviderError, Settings, Usage
from turnout.providers import StreamEnd

from ._cascade import (
    AllAttemptsFailedError,
    Answer,
    Attempt,
    Cascade,
    OpenStream,
    Outcome,
    detach,
)
from ._checks import DEFAULT_CHECKS, Check, build_checks
from ._classifier import PromptClassifier, build_classifier
from ._errors import classify
from ._intake import RequestFacts, inspect_request, parse_request
from ._resilience import Deadline
from ._router import Plan, Router
from ._upstreams import Upstreams, settle
from .governance import Admission, Caller, Governor, RequestMeter, check_user_id, text_bound
from .governance import worst_case as bound_of

log = logging.getLogger("turnout.gateway.requests")


@dataclass
class Reply:
    """What the HTTP edge sends: a JSON body or an SSE stream, plus headers."""

    headers: dict[str, str]
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None


def usd(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.000001')):f}"


def _headers(
    request_id: str, plan: Plan, tier: str, model: str, outcome: Outcome
) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-turnout-route": f"{plan.route}; pattern={plan.pattern}; tier={tier}",
        "x-turnout-start": f"{plan.ladder[0].name}; by={plan.why}",
        "x-turnout-model": model,
        "x-turnout-attempts": str(len([a for a in outcome.attempts if a.outcome != "skipped"])),
        "x-turnout-attempt-log": "; ".join(a.label() for a in outcome.attempts),
    }


def openai_usage(usage: Usage, cost: Decimal | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens + usage.audio_output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens + usage.audio_output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "audio_tokens": usage.audio_input_tokens,
            "image_tokens": usage.image_input_tokens,
        },
    }
    if cost is not None:
        record["cost_usd"] = usd(cost)
    return record


@dataclass
class Governed:
    """One request's standing with governance: who, what it may spend, what it holds."""

    caller: Caller
    admission: Admission
    meter: RequestMeter
    image_note: str | None

    def headers(self) -> dict[str, str]:
        headers = dict(self.admission.headers)
        headers["x-turnout-tenant"] = self.caller.tenant.id
        if self.image_note:
            headers["x-turnout-image-cap"] = self.image_note
        return headers

    async def finish(self, outcome: Outcome) -> None:
        tokens = sum(
            a.usage.input_tokens + a.usage.output_tokens for a in outcome.attempts if a.usage
        )
        await self.admission.settle_tokens(tokens)
        await self.admission.release()


class ChatService:
    def __init__(
        self, settings: Settings, router: Router, upstreams: Upstreams, governor: Governor
    ) -> None:
        self.settings = settings
        self.router = router
        self.upstreams = upstreams
        self.governor = governor
        self.cascade = Cascade(upstreams)
        self.checks: dict[str, tuple[Check, ...]] = {
            name: build_checks(route, f"routes.{name}") for name, route in settings.routes.items()
        }
        self.classifiers: dict[str, PromptClassifier] = {
            name: build_classifier(route.classifier)
            for name, route in settings.routes.items()
            if route.classifier is not None
        }

    async def complete(
        self, body: bytes, request_id: str, authorization: str | None = None
    ) -> Reply:
        started = time.monotonic()
        limits = self.settings.gateway
        caller = self.governor.identify(authorization, None)  # 401 before anything else
        chat = parse_request(body, limits.max_body_bytes)
        if caller.user is None and chat.user:
            caller = replace(caller, user=check_user_id(chat.user))
        facts = inspect_request(chat, limits.image_types)
        if facts.unknown_fields:
            log.info(
                "request %s: ignored unknown fields %s", request_id, ", ".join(facts.unknown_fields)
            )
        plan = await self._plan(chat, facts)
        upstreams = [self.upstreams.get(d) for tier in plan.ladder for d in tier.deployments]
        self.governor.check_access(caller, plan, upstreams)
        text_bytes = text_bound(len(body), facts)
        capped = self.governor.cap(caller, chat, facts, plan, [u.card for u in upstreams])
        chat, facts = capped.request, capped.facts
        asked = chat
        output_cap, must_send = self.governor.output_cap(chat, plan)
        if must_send:  # so the reservation's output bound holds at the provider too
            chat = chat.model_copy(update={"max_tokens": output_cap})
        first = bound_of(upstreams[0].card, facts, text_bytes, output_cap).usage
        admission = await self.governor.admit(caller, first.input_tokens + first.output_tokens)
        governed = Governed(
            caller,
            admission,
            self.governor.meter(caller, request_id, plan, facts, text_bytes, output_cap),
            capped.note,
        )
        try:
            return await self._run(chat, asked, facts, plan, governed, request_id, started)
        except BaseException:
            await admission.release()
            raise

    async def _run(
        self,
        chat: ChatRequest,
        asked: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        governed: Governed,
        request_id: str,
        started: float,
    ) -> Reply:
        deadline = Deadline(self.settings.gateway.deadline_s)
        meter = governed.meter
        if chat.stream:
            opened = await self.cascade.open_stream(plan.ladder, chat, facts, deadline, meter)
            assert opened.upstream is not None
            headers = _headers(
                request_id, plan, opened.tier, opened.upstream.deployment.label, opened
            )
            headers.update(governed.headers())
            stream = self._sse(chat, facts, plan, opened, governed, request_id, started)
            return Reply(headers, stream=stream)
        checks = self.checks.get(plan.route, DEFAULT_CHECKS) if plan.settings else DEFAULT_CHECKS
        answer = await self.cascade.answer(plan.ladder, chat, facts, checks, deadline, meter, asked)
        await governed.finish(answer)
        reply = self._json_reply(answer, plan, governed, request_id, started)
        reply.headers.update(governed.headers())
        return reply

    async def _plan(self, chat: ChatRequest, facts: RequestFacts) -> Plan:
        plan = self.router.plan(chat, facts)
        classifier = self.classifiers.get(plan.route) if plan.why == "default" else None
        if classifier is None:
            return plan
        verdict = await classifier.classify_request(chat)
        if verdict is None:
            return plan
        names = [t.name for t in plan.tiers]
        start = names.index(verdict.tier) if verdict.tier is not None else plan.start
        return replace(plan, start=start, why=verdict.why())

    def _json_reply(
        self, answer: Answer, plan: Plan, governed: Governed, request_id: str, started: float
    ) -> Reply:
        assert answer.completion is not None and answer.upstream is not None
        body = dict(answer.completion.body)
        body["model"] = answer.upstream.deployment.model
        headers = _headers(request_id, plan, answer.tier, answer.upstream.deployment.label, answer)
        headers["x-turnout-cost-usd"] = usd(answer.cost)
        if answer.check_failed:
            headers["x-turnout-check-failed"] = answer.check_failed
        self._log(request_id, plan, governed, answer, answer.tier, "ok", time.monotonic() - started)
        return Reply(headers, body=orjson.dumps(body))

    async def _sse(
        self,
        chat: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        opened: OpenStream,
        governed: Governed,
        request_id: str,
        started: float,
    ) -> AsyncIterator[bytes]:
        settled = False
        try:
            async for chunk in self._sse_events(
                chat, facts, plan, opened, governed, request_id, started
            ):
                yield chunk
            settled = True
        finally:
            if not settled:  # the client went away mid-stream: the worst case bounds it
                detach(
                    governed.meter.charge_reserved(
                        opened.reservation, outcome="client_disconnected", reason="stream cut"
                    )
                )
            detach(governed.finish(opened))

    async def _sse_events(
        self,
        chat: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        opened: OpenStream,
        governed: Governed,
        request_id: str,
        started: float,
    ) -> AsyncIterator[bytes]:
        assert opened.upstream is not None
        upstream = opened.upstream
        last_id = ""
        for delta in opened.head:
            last_id = str(delta.chunk.get("id", last_id))
            yield b"data: " + orjson.dumps(delta.chunk) + b"\n\n"
        end = opened.end
        try:
            if end is None and opened.rest is not None:
                async for event in opened.rest:
                    if isinstance(event, StreamEnd):
                        end = event
                        break
                    last_id = str(event.chunk.get("id", last_id))
                    yield b"data: " + orjson.dumps(event.chunk) + b"\n\n"
        except ProviderError as exc:
            # Past the commit point nothing can escalate: end the stream with an error event.
            upstream.breaker.record_failure()
            opened.attempts.append(
                Attempt(
                    opened.tier,
                    upstream.deployment.label,
                    "error",
                    type(exc).__name__,
                    time.monotonic() - opened.started,
                    opened.ttft_s,
                    status=exc.status,
                )
            )
            await governed.meter.charge_reserved(
                opened.reservation, outcome="stream_error", reason=type(exc).__name__
            )
            _, kind, code = classify(exc)
            error = {"error": {"message": str(exc), "type": kind, "param": None, "code": code}}
            yield b"data: " + orjson.dumps(error) + b"\n\n"
            self._log(
                request_id,
                plan,
                governed,
                opened,
                opened.tier,
                "stream_error",
                time.monotonic() - started,
            )
            return
        usage, spent = (Usage(), Decimal(0))
        if end is not None:
            usage, spent = settle(upstream.card, end.usage, facts, end.image_tokens_reported)
            await governed.meter.settle(
                opened.reservation,
                usage,
                spent,
                outcome="ok",
                latency_s=time.monotonic() - opened.started,
                ttft_s=opened.ttft_s,
            )
        else:  # the stream ended without usage: the worst case bounds it
            await governed.meter.charge_reserved(
                opened.reservation, outcome="ok", reason="no usage reported"
            )
        opened.attempts.append(
            Attempt(
                opened.tier,
                upstream.deployment.label,
                "ok",
                None,
                time.monotonic() - opened.started,
                opened.ttft_s,
                usage,
                spent,
            )
        )
        if chat.stream_options is not None and chat.stream_options.include_usage:
            chunk = {
                "id": last_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": upstream.deployment.model,
                "choices": [],
                "usage": openai_usage(usage, opened.cost),
            }
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield f": x-turnout-cost-usd={usd(opened.cost)}\n\n".encode()
        yield b"data: [DONE]\n\n"
        self._log(request_id, plan, governed, opened, opened.tier, "ok", time.monotonic() - started)

    def _log(
        self,
        request_id: str,
        plan: Plan,
        governed: Governed,
        outcome: Outcome,
        tier: str,
        result: str,
        seconds: float,
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            orjson.dumps(
                {
                    "request_id": request_id,
                    "tenant": governed.caller.tenant.id,
                    "user": governed.caller.user,
                    "route": plan.route,
                    "pattern": plan.pattern,
                    "start": plan.why,
                    "tier": tier,
                    "outcome": result,
                    "attempts": [a.label() for a in outcome.attempts],
                    "cost_usd": usd(outcome.cost),
                    "images": len(governed.meter.facts.images),
                    "image_cap": governed.image_note,
                    "latency_ms": round(seconds * 1000, 2),
                }
            ).decode()
        )


def failure_headers(exc: BaseException, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id}
    if isinstance(exc, AllAttemptsFailedError):
        headers["x-turnout-attempts"] = str(len(exc.outcome.attempts))
        headers["x-turnout-attempt-log"] = "; ".join(a.label() for a in exc.outcome.attempts)
        headers["x-turnout-cost-usd"] = usd(exc.outcome.cost)
    return headers
