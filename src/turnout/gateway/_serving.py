"""Serving one chat completion: parse, route, run the cascade, respond with headers.

Plain classes callable without HTTP details beyond the body bytes and a request id;
the FastAPI routes in `_app.py` are thin shells over `ChatService`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson

from turnout.core import (
    AudioPart,
    ChatRequest,
    InvalidInputError,
    ProviderError,
    Settings,
    Usage,
    to_micros,
)
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
from ._upstreams import Upstream, Upstreams, settle
from .governance import Admission, Caller, Governor, RequestMeter, check_user_id, text_bound
from .governance import worst_case as bound_of
from .retrieval import CitationCheck, Context, RagPath
from .telemetry import Judging, Observation, Telemetry

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


@dataclass
class ObservedMeter:
    """The request's meter, timed: reserve and settle are stages, and the call between
    them is the `provider` stage and, with tracing on, a GenAI `chat` span."""

    inner: RequestMeter
    obs: Observation
    telemetry: Telemetry
    # reservation -> (perf_counter at the call's start, wall ns, provider, model, tier)
    _open: dict[Any, tuple[float, int, str, str, str]] = field(default_factory=dict)

    async def reserve(self, tier: str, upstream: Upstream) -> Any:
        started = time.perf_counter()
        reservation = await self.inner.reserve(tier, upstream)
        now = time.perf_counter()
        self.obs.stages.add("reserve", now - started)
        dep = upstream.deployment
        self._open[reservation] = (now, time.time_ns(), dep.provider, dep.model, tier)
        return reservation

    def _called(self, reservation: Any, usage: Usage | None, outcome: str) -> None:
        opened = self._open.pop(reservation, None)
        if opened is None:
            return
        started, start_ns, provider, model, tier = opened
        self.obs.stages.add("provider", time.perf_counter() - started)
        if self.obs.traced:  # the `chat` span is made after the response (Telemetry._emit)
            call = (provider, model, tier, start_ns, time.time_ns(), usage, outcome)
            self.obs.calls.append(call)

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
    ) -> None:
        self._called(reservation, usage, outcome)
        with self.obs.stages.time("settle"):
            await self.inner.settle(
                reservation,
                usage,
                cost,
                outcome=outcome,
                reason=reason,
                latency_s=latency_s,
                ttft_s=ttft_s,
            )

    async def charge_reserved(self, reservation: Any, *, outcome: str, reason: str) -> None:
        self._called(reservation, None, outcome)
        with self.obs.stages.time("settle"):
            await self.inner.charge_reserved(reservation, outcome=outcome, reason=reason)

    async def release(
        self,
        reservation: Any,
        *,
        outcome: str,
        reason: str | None = None,
        latency_s: float | None = None,
    ) -> None:
        self._called(reservation, None, outcome)
        with self.obs.stages.time("settle"):
            await self.inner.release(
                reservation, outcome=outcome, reason=reason, latency_s=latency_s
            )


def _modality(chat: ChatRequest, facts: RequestFacts) -> str:
    for message in chat.messages:
        if isinstance(message.content, list) and any(
            isinstance(p, AudioPart) for p in message.content
        ):
            return "audio"
    return "image" if facts.images else "text"


def _prompt_text(chat: ChatRequest, limit: int = 4000) -> str:
    return "\n".join(f"{m.role}: {m.text()}" for m in chat.messages)[:limit]


class ChatService:
    def __init__(
        self,
        settings: Settings,
        router: Router,
        upstreams: Upstreams,
        governor: Governor,
        telemetry: Telemetry,
        judging: Judging | None = None,
        rag: RagPath | None = None,
    ) -> None:
        self.settings = settings
        self.rag = rag
        self.router = router
        self.upstreams = upstreams
        self.governor = governor
        self.telemetry = telemetry
        self.judging = judging
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
        self, body: bytes, request_id: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """Answer one request. Every way it ends, the observation is finished once: here
        on an error, in `_json_reply`, or when a stream's last byte has gone."""
        headers = headers or {}
        obs = self.telemetry.begin(request_id, headers)
        try:
            return await self._complete(body, request_id, headers, obs)
        except BaseException as exc:
            self._failed(obs, exc)
            raise

    def _failed(self, obs: Observation, exc: BaseException) -> None:
        status, _, _ = classify(exc)
        obs.status = status
        obs.error_type = type(exc).__name__
        obs.outcome = "refused" if status < 500 else "error"
        if isinstance(exc, AllAttemptsFailedError):
            obs.attempts = list(exc.outcome.attempts)
            obs.cost_micros = to_micros(exc.outcome.cost)
        self.telemetry.finish(obs)

    async def _complete(
        self, body: bytes, request_id: str, headers: Mapping[str, str], obs: Observation
    ) -> Reply:
        limits = self.settings.gateway
        stages = obs.stages
        with stages.time("auth"):  # 401 before anything else
            caller = self.governor.identify(headers.get("authorization"), None)
        obs.tenant = caller.tenant.id
        with stages.time("parse"):
            chat = parse_request(body, limits.max_body_bytes)
            if caller.user is None and chat.user:
                caller = replace(caller, user=check_user_id(chat.user))
        obs.user = caller.user
        if caller.tenant.policy.log_prompts:
            obs.prompt = _prompt_text(chat)
        with stages.time("image_count"):
            facts = inspect_request(chat, limits.image_types)
        obs.modality = _modality(chat, facts)
        obs.image_details = tuple(i.detail for i in facts.images)
        if facts.unknown_fields:
            log.info(
                "request %s: ignored unknown fields %s", request_id, ", ".join(facts.unknown_fields)
            )
        with stages.time("route"):
            plan = await self._plan(chat, facts)
        obs.route, obs.start_tier = plan.route, plan.ladder[0].name
        upstreams = [self.upstreams.get(d) for tier in plan.ladder for d in tier.deployments]
        self.governor.check_access(caller, plan, upstreams)
        asked_retrieval = headers.get("x-turnout-retrieval")
        if asked_retrieval not in (None, "on", "off"):
            raise InvalidInputError(
                f"x-turnout-retrieval: {asked_retrieval[:20]!r}; expected on or off"
            )
        context, plan = await self._retrieve(caller, chat, facts, plan, obs, asked_retrieval)
        obs.pattern = plan.pattern
        _gold(obs, headers)
        added = 0
        if context is not None:
            chat, added = context.request, context.added_bytes
            with stages.time("image_count"):  # attached images count like the caller's own
                facts = inspect_request(chat, limits.image_types)
            obs.image_details = tuple(i.detail for i in facts.images)
        text_bytes = text_bound(len(body) + added, facts)
        with stages.time("downscale"):
            capped = self.governor.cap(caller, chat, facts, plan, [u.card for u in upstreams])
        chat, facts = capped.request, capped.facts
        obs.image_details, obs.image_note = tuple(i.detail for i in facts.images), capped.note
        asked = chat
        output_cap, must_send = self.governor.output_cap(chat, plan)
        if must_send:  # so the reservation's output bound holds at the provider too
            chat = chat.model_copy(update={"max_tokens": output_cap})
        first = bound_of(upstreams[0].card, facts, text_bytes, output_cap).usage
        with stages.time("admission"):
            admission = await self.governor.admit(caller, first.input_tokens + first.output_tokens)
        meter = self.governor.meter(caller, request_id, plan, facts, text_bytes, output_cap)
        governed = Governed(caller, admission, meter, capped.note)
        try:
            return await self._run(chat, asked, facts, plan, governed, obs, context)
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
        obs: Observation,
        context: Context | None = None,
    ) -> Reply:
        deadline = Deadline(self.settings.gateway.deadline_s)
        meter = ObservedMeter(governed.meter, obs, self.telemetry)
        if chat.stream:
            opened = await self.cascade.open_stream(plan.ladder, chat, facts, deadline, meter)
            assert opened.upstream is not None
            obs.tier, obs.model = opened.tier, opened.upstream.deployment.label
            obs.attempts, obs.ttft_s = opened.attempts, opened.ttft_s
            headers = _headers(
                obs.request_id, plan, opened.tier, opened.upstream.deployment.label, opened
            )
            headers.update(governed.headers())
            if context is not None:
                headers.update(context.headers(None))
            elif obs.retrieval_note is not None:
                headers["x-turnout-retrieval"] = obs.retrieval_note
            headers["server-timing"] = obs.stages.server_timing()
            stream = self._sse(chat, facts, plan, opened, governed, meter, obs, context)
            return Reply(headers, stream=stream)
        checks = self.checks.get(plan.route, DEFAULT_CHECKS) if plan.settings else DEFAULT_CHECKS
        if (
            context is not None
            and plan.settings is not None
            and "citations" in plan.settings.checks
        ):
            require = (
                plan.settings.retrieval is not None and plan.settings.retrieval.require_citation
            )
            checks = (*checks, CitationCheck(len(context.sources), require))
        answer = await self.cascade.answer(
            plan.ladder, chat, facts, checks, deadline, meter, asked, stages=obs.stages
        )
        await governed.finish(answer)
        reply = self._json_reply(answer, plan, obs, context)
        reply.headers.update(governed.headers())
        if self.judging is not None and answer.completion is not None:
            # Off the request path: Judging samples and schedules its own task.
            self.judging.consider(obs, asked, _answer_text(answer.completion.body), governed.caller)
        return reply

    async def _retrieve(
        self,
        caller: Caller,
        chat: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        obs: Observation,
        asked: str | None = None,
    ) -> tuple[Context | None, Plan]:
        """The rag pattern's retrieval step, when the route has one and its rule says so;
        otherwise the request goes down the direct path (and the headers say why)."""
        retrieval = plan.settings.retrieval if plan.settings is not None else None
        if plan.pattern != "rag" or retrieval is None or self.rag is None:
            return None, plan
        context, why = await self.rag.prepare(
            caller.tenant.id, retrieval, chat, has_own_image=bool(facts.images), asked=asked
        )
        if context is None:
            obs.retrieval_note = f"skipped; why={why}"
            return None, replace(plan, pattern="direct")
        for stage, seconds in context.timings.items():
            obs.stages.add(stage, seconds)
        obs.retrieved = [s["id"] for s in context.sources]
        if any(s["page"] for s in context.sources):
            obs.modality = "document"  # answered from document pages
        obs.retrieval_note = f"{len(context.sources)} items; why={why}"
        return context, plan

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
        self, answer: Answer, plan: Plan, obs: Observation, context: Context | None = None
    ) -> Reply:
        assert answer.completion is not None and answer.upstream is not None
        with obs.stages.time("response"):
            body = dict(answer.completion.body)
            body["model"] = answer.upstream.deployment.model
            headers = _headers(
                obs.request_id, plan, answer.tier, answer.upstream.deployment.label, answer
            )
            if context is not None:
                text = _answer_text(body)
                body["turnout"] = context.extension(text)
                headers.update(context.headers(text))
            elif obs.retrieval_note is not None:
                headers["x-turnout-retrieval"] = obs.retrieval_note
            headers["x-turnout-cost-usd"] = usd(answer.cost)
            if answer.check_failed:
                headers["x-turnout-check-failed"] = answer.check_failed
            payload = orjson.dumps(body)
        obs.tier, obs.model, obs.attempts = (
            answer.tier,
            answer.upstream.deployment.label,
            answer.attempts,
        )
        obs.outcome = "check_failed" if answer.check_failed else "ok"
        obs.cost_micros = to_micros(answer.cost)
        headers["server-timing"] = obs.stages.server_timing()
        self.telemetry.finish(obs)
        return Reply(headers, body=payload)

    async def _sse(
        self,
        chat: ChatRequest,
        facts: RequestFacts,
        plan: Plan,
        opened: OpenStream,
        governed: Governed,
        meter: ObservedMeter,
        obs: Observation,
        context: Context | None = None,
    ) -> AsyncIterator[bytes]:
        done = False
        try:
            async for chunk in self._sse_events(chat, facts, opened, meter, obs, context):
                yield chunk
            done = True
        finally:
            if not done:  # the client went away mid-stream: the worst case bounds it
                obs.outcome, obs.error_type, obs.status = "client_disconnected", None, 499
                detach(
                    meter.charge_reserved(
                        opened.reservation, outcome="client_disconnected", reason="stream cut"
                    )
                )
            obs.attempts, obs.cost_micros = opened.attempts, to_micros(opened.cost)
            self.telemetry.finish(obs)
            detach(governed.finish(opened))

    async def _sse_events(
        self,
        chat: ChatRequest,
        facts: RequestFacts,
        opened: OpenStream,
        meter: ObservedMeter,
        obs: Observation,
        context: Context | None = None,
    ) -> AsyncIterator[bytes]:
        assert opened.upstream is not None
        upstream = opened.upstream
        last_id = ""
        answer: list[str] = []  # the streamed text, for the citations (rag only)
        for delta in opened.head:
            last_id = str(delta.chunk.get("id", last_id))
            if context is not None:
                answer.append(_delta_text(delta.chunk))
            yield b"data: " + orjson.dumps(delta.chunk) + b"\n\n"
        end = opened.end
        try:
            if end is None and opened.rest is not None:
                async for event in opened.rest:
                    if isinstance(event, StreamEnd):
                        end = event
                        break
                    last_id = str(event.chunk.get("id", last_id))
                    if context is not None:
                        answer.append(_delta_text(event.chunk))
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
            await meter.charge_reserved(
                opened.reservation, outcome="stream_error", reason=type(exc).__name__
            )
            _, kind, code = classify(exc)
            error = {"error": {"message": str(exc), "type": kind, "param": None, "code": code}}
            obs.outcome, obs.error_type = "stream_error", type(exc).__name__
            yield b"data: " + orjson.dumps(error) + b"\n\n"
            return
        usage, spent = (Usage(), Decimal(0))
        if end is not None:
            usage, spent = settle(upstream.card, end.usage, facts, end.image_tokens_reported)
            await meter.settle(
                opened.reservation,
                usage,
                spent,
                outcome="ok",
                latency_s=time.monotonic() - opened.started,
                ttft_s=opened.ttft_s,
            )
        else:  # the stream ended without usage: the worst case bounds it
            await meter.charge_reserved(
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

        def last_chunk(field: str, value: Any) -> bytes:
            """A chunk without choices that carries `usage` or `turnout` (as OpenAI's usage
            chunk does)."""
            chunk = {
                "id": last_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": upstream.deployment.model,
                "choices": [],
                field: value,
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        if chat.stream_options is not None and chat.stream_options.include_usage:
            yield last_chunk("usage", openai_usage(usage, opened.cost))
        if context is not None:  # past the commit point: citations are reported, not checked
            yield last_chunk("turnout", context.extension("".join(answer)))
        yield f": x-turnout-cost-usd={usd(opened.cost)}\n\n".encode()
        yield b"data: [DONE]\n\n"
        obs.outcome = "ok"


def _delta_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""


def _answer_text(body: dict[str, Any]) -> str:
    choices = body.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


def _gold(obs: Observation, headers: Mapping[str, str]) -> None:
    """Gold item ids for recall tracking (an evaluation or regression run names them)."""
    gold = headers.get("x-turnout-gold-ids")
    if gold:
        obs.gold = tuple(g.strip() for g in gold.split(",") if g.strip())[:100]
        k = headers.get("x-turnout-recall-k", "")
        obs.recall_k = int(k) if k.isdigit() and 0 < int(k) <= 1000 else None


def failure_headers(exc: BaseException, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id}
    if isinstance(exc, AllAttemptsFailedError):
        headers["x-turnout-attempts"] = str(len(exc.outcome.attempts))
        headers["x-turnout-attempt-log"] = "; ".join(a.label() for a in exc.outcome.attempts)
        headers["x-turnout-cost-usd"] = usd(exc.outcome.cost)
    return headers
