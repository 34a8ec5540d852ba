"""Sampled judging, off the request path.

One request in `routes.<r>.judge.every` (counted per route, per gateway process) is judged
after its answer has gone out, in a task of its own:

- **faithfulness** (RAGAS): the judge model lists the answer's claims with a verdict each
  (supported by the context or not); the score is supported claims / all claims.
- **answer relevance** (RAGAS): the judge model writes questions the answer would answer;
  the score is the mean cosine similarity of their MiniLM embeddings to the user's question.
- **grounding** (local, no provider call): the share of answer sentences whose best cosine
  similarity to any context sentence reaches `grounding_threshold` (MiniLM embeddings).

Both judge scores come from one call to the judge model, through the configured providers.
Its cost is reserved and settled in the ledger against the request's tenant, as an attempt
of the request itself: same request id, route and pattern, tier `judge`, attempt number
after the request's own. A judge the budget refuses is stored as `failed` with the reason
and nothing else happens; judge errors, unparsable verdicts and timeouts are stored with
their status and counted in `turnout_judge_failures`; none of it touches the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turnout.core import (
    BudgetExceededError,
    Catalog,
    ChatRequest,
    ConfigError,
    JudgeSettings,
    Message,
    ModelCard,
    ProviderError,
    Settings,
    UpstreamTimeout,
    Usage,
    cost,
)
from turnout.providers import Provider, ProviderCall, build_provider

from .._upstreams import Upstreams, _kind_options
from ..governance import AttemptPlan, Caller, Governor, Reservation
from ..governance._schema import judgments
from ..governance._worst_case import ceil_micros
from ._metrics import Metrics
from ._observation import Observation

if TYPE_CHECKING:
    from turnout.retrieval import TextEncoder

log = logging.getLogger("turnout.gateway.judging")

GROUNDING_THRESHOLD = 0.6  # MiniLM cosine: paraphrases score 0.75+, unrelated text < 0.3
QUESTIONS = 3  # questions the judge writes for answer relevance (RAGAS uses 3)
JUDGE_MAX_TOKENS = 1024  # output cap sent to the judge, so its reservation bounds it
MAX_CONTEXT_CHARS = 24_000  # context sent to the judge (and embedded), at most
MAX_SENTENCES = 400  # per side, for grounding
MAX_PENDING = 64  # judgments in flight; beyond it a sampled request is dropped (counted)
STOP_GRACE_S = 3.0  # stop() waits this long for judgments in flight, then cancels them
LOCAL_JUDGE = "minilm-grounding"
_HTTP_SLACK_S = 5.0  # the HTTP client's timeout is the judge's plus this


# -- what the judge must answer --------------------------------------------------------


class _Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    claim: str = Field(min_length=1)
    verdict: Literal["supported", "unsupported"]
    reason: str | None = None


class _Verdicts(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    claims: list[_Claim]
    questions: list[str] = Field(min_length=1, max_length=10)


class JudgeParseError(ValueError):
    """The judge's answer is not the JSON object it was asked for."""


@dataclass(frozen=True)
class Report:
    """What the judge model said: faithfulness (None without context or claims) and the
    questions the answer would answer."""

    faithfulness: float | None
    claims: int
    questions: list[str]


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)


def parse_report(content: str | None, *, with_claims: bool) -> Report:
    """The judge's JSON, strictly: one object with `claims` (each `claim` and `verdict`
    supported|unsupported, optional `reason`) and `questions` (non-empty strings). A single
    ```json fence around it is tolerated; anything else raises JudgeParseError."""
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise JudgeParseError(f"the judge's answer is not JSON: {text[:200]!r}") from exc
    try:
        verdicts = _Verdicts.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise JudgeParseError(f"the judge's JSON is not as asked: {where}: {first['msg']}") from exc
    questions = [q.strip() for q in verdicts.questions]
    if not all(questions):
        raise JudgeParseError("the judge's JSON is not as asked: questions: an empty question")
    faithfulness = None
    if with_claims and verdicts.claims:
        supported = sum(1 for c in verdicts.claims if c.verdict == "supported")
        faithfulness = supported / len(verdicts.claims)
    return Report(faithfulness, len(verdicts.claims), questions)


_INSTRUCTIONS = """You grade an assistant's answer. Reply with one JSON object and nothing else:
{"claims": [{"claim": "...", "verdict": "supported"}], "questions": ["...", "...", "..."]}
- claims: %s
- questions: exactly %d questions, each one that the ANSWER would answer, written as a user \
would ask it."""
_CLAIMS = (
    "every atomic factual claim the ANSWER makes, one per item; verdict is "
    '"supported" if the claim can be inferred from the CONTEXT alone, else "unsupported".'
)
_NO_CLAIMS = "an empty list (there is no context to check claims against)."


def judge_request(model: str, question: str, answer: str, context: list[str]) -> ChatRequest:
    """The one call that yields both judge scores."""
    system = _INSTRUCTIONS % (_CLAIMS if context else _NO_CLAIMS, QUESTIONS)
    parts = []
    if context:
        parts.append("CONTEXT:\n" + "\n\n".join(context))
    parts += [f"QUESTION:\n{question}", f"ANSWER:\n{answer}"]
    return ChatRequest(
        model=model,
        messages=[
            Message(role="system", content=system),
            Message(role="user", content="\n\n".join(parts)),
        ],
        temperature=0,
        max_tokens=JUDGE_MAX_TOKENS,
    )


# -- what the answer is judged against ---------------------------------------------------


def judge_context(obs: Observation, request: ChatRequest) -> tuple[str, list[str]]:
    """The user's question and the texts the answer should be grounded in.

    The RAG path replaces the context with the retrieved items' text (`obs.retrieved`
    holds their ids); until then it is the request's own messages other than the final
    user question: the system prompt, earlier turns and any document pasted into them."""
    messages = request.messages
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    question = messages[last_user].text() if last_user >= 0 else ""
    context, size = [], 0
    for i, message in enumerate(messages):
        text = message.text().strip()
        if i == last_user or not text or size >= MAX_CONTEXT_CHARS:
            continue
        text = text[: MAX_CONTEXT_CHARS - size]
        context.append(text)
        size += len(text)
    return question, context


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """Sentences (and lines) of at least three characters, at most MAX_SENTENCES."""
    parts = (s.strip(" \t-*•") for s in _SENTENCE_END.split(text))
    return [s for s in parts if len(s) >= 3][:MAX_SENTENCES]


# -- the local embedding model -----------------------------------------------------------

_encoder: TextEncoder | None = None
_encoder_lock = threading.Lock()


def _text_encoder() -> TextEncoder:
    """MiniLM, loaded once per process (in a worker thread) and kept."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            from turnout.retrieval import load_text_encoder

            _encoder = load_text_encoder("minilm")
        return _encoder


@dataclass(frozen=True)
class _Similarity:
    relevance: float | None
    grounding: float | None


def _similarity(
    question: str,
    questions: list[str] | None,
    answer: str,
    context: list[str] | None,
    threshold: float,
) -> _Similarity:
    """Relevance (if `questions`) and grounding (if `context`; None when the answer or the
    context has no sentence), in one embedding pass. Blocking: run it in a thread."""
    answer_sents = sentences(answer) if context else []
    context_sents = [s for c in context or [] for s in sentences(c)][:MAX_SENTENCES]
    grounding_on = bool(answer_sents and context_sents)
    texts: list[str] = []
    if questions:
        texts += [question, *questions]
    if grounding_on:
        texts += answer_sents + context_sents
    if not texts:
        return _Similarity(None, None)
    encoder = _text_encoder()
    with _encoder_lock:
        vectors = encoder.embed_texts(texts)
    relevance = grounding = None
    at = 0
    if questions:  # rows are L2-normalised: dot products are cosines
        relevance = _clip(float((vectors[1 : 1 + len(questions)] @ vectors[0]).mean()))
        at = 1 + len(questions)
    if grounding_on:
        a = vectors[at : at + len(answer_sents)]
        c = vectors[at + len(answer_sents) :]
        grounding = float(((a @ c.T).max(axis=1) >= threshold).mean())
    return _Similarity(relevance, grounding)


def _clip(score: float) -> float:
    return min(1.0, max(0.0, score))


# -- one judgment ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judge:
    """A route's judge, resolved and checked at construction."""

    route: str
    settings: JudgeSettings
    provider_name: str | None
    provider: Provider | None
    model: str | None
    card: ModelCard | None

    @property
    def label(self) -> str:
        if self.provider_name is None or self.model is None:
            return LOCAL_JUDGE
        return f"{self.provider_name}/{self.model}"


@dataclass(frozen=True)
class _Case:
    """The judged request, copied when it was sampled."""

    request_id: str
    attempt: int  # the judge's ledger attempt number: after the request's own
    route: str
    pattern: str
    caller: Caller
    question: str
    answer: str
    context: list[str]


@dataclass
class Judgment:
    faithfulness: float | None = None
    relevance: float | None = None
    grounding: float | None = None
    cost_micros: int = 0
    status: Literal["ok", "failed", "timeout"] = "ok"
    error: str | None = None

    def fail(self, status: Literal["failed", "timeout"], error: str) -> None:
        if self.status == "ok":  # the first failure is the one reported
            self.status, self.error = status, error[:2000]


class _JudgeTimeout(Exception):
    pass


class Judging:
    """Judges one request in `judge.every` per route (routes without `judge` are never
    judged). `consider` is called after each non-streamed answer has been sent."""

    def __init__(
        self,
        settings: Settings,
        upstreams: Upstreams,
        governor: Governor,
        metrics: Metrics | None,
        catalog: Catalog,
        *,
        grounding_threshold: float = GROUNDING_THRESHOLD,
        max_pending: int = MAX_PENDING,
    ) -> None:
        """Raises ConfigError naming `routes.<r>.judge.<key>` for a judge that names an
        unknown provider or a model missing from the catalog."""
        self.governor = governor
        self.metrics = metrics
        self.grounding_threshold = grounding_threshold
        self.max_pending = max_pending
        self._owned: dict[str, Provider] = {}  # judge providers no route deploys to
        self._judges: dict[str, _Judge] = {}
        for route, route_settings in settings.routes.items():
            if route_settings.judge is not None:
                self._judges[route] = self._resolve(
                    route, route_settings.judge, settings, upstreams, catalog
                )
        self._counts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cleanup: set[asyncio.Task[None]] = set()
        self._stopped = False

    def _resolve(
        self,
        route: str,
        judge: JudgeSettings,
        settings: Settings,
        upstreams: Upstreams,
        catalog: Catalog,
    ) -> _Judge:
        key = f"routes.{route}.judge"
        if judge.provider is None:
            if judge.model is not None or judge.catalog is not None:
                raise ConfigError(f"{key}.provider: a judge model needs its provider")
            if not judge.grounding:
                raise ConfigError(
                    f"{key}: neither a provider (judge model) nor grounding: nothing to judge"
                )
            return _Judge(route, judge, None, None, None, None)
        provider_settings = settings.providers.get(judge.provider)
        if provider_settings is None:
            raise ConfigError(
                f"{key}.provider: unknown provider {judge.provider!r}; "
                f"configured: {', '.join(settings.providers) or 'none'}"
            )
        if judge.model is None:
            raise ConfigError(f"{key}.model: the judge model at {judge.provider!r} is required")
        catalog_id = judge.catalog or judge.model
        if catalog_id not in catalog:
            raise ConfigError(
                f"{key}.catalog: model {catalog_id!r} is not in the catalog, so the judge's "
                "cost is unknown; set `catalog:` to a catalog id or add the model to a "
                "catalog file"
            )
        provider = upstreams.providers.get(judge.provider) or self._owned.get(judge.provider)
        if provider is None:
            provider = build_provider(
                provider_settings.kind,
                judge.provider,
                provider_settings.base_url,
                (
                    provider_settings.api_key.get_secret_value()
                    if provider_settings.api_key
                    else None
                ),
                headers=provider_settings.headers,
                max_connections=provider_settings.max_connections,
                **_kind_options(provider_settings),
            )
            self._owned[judge.provider] = provider
        return _Judge(route, judge, judge.provider, provider, judge.model, catalog.get(catalog_id))

    @property
    def pending(self) -> int:
        """Judgments in flight."""
        return len(self._tasks)

    # -- the request path: count, and now and then schedule ------------------------------
    def consider(self, obs: Observation, request: ChatRequest, answer: str, caller: Caller) -> None:
        try:
            judge = self._judges.get(obs.route)
            if judge is None or self._stopped:
                return
            count = self._counts.get(obs.route, 0) + 1
            self._counts[obs.route] = count
            if count % judge.settings.every:
                return
            if len(self._tasks) >= self.max_pending:
                log.warning(
                    "request %s: not judged, %d judgments already in flight",
                    obs.request_id,
                    len(self._tasks),
                )
                if self.metrics is not None:
                    self.metrics.judge_failures.labels(obs.route, "dropped").inc()
                return
            question, context = judge_context(obs, request)
            case = _Case(
                obs.request_id,
                len(obs.attempts) + 1,
                obs.route,
                obs.pattern,
                caller,
                question,
                answer,
                context,
            )
            task = asyncio.get_running_loop().create_task(self._run(judge, case))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        except Exception:  # judging never affects a request
            log.exception("request %s: could not schedule its judgment", obs.request_id)

    async def stop(self) -> None:
        """Let judgments in flight finish for up to STOP_GRACE_S, then cancel the rest."""
        self._stopped = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        if self._cleanup:
            await asyncio.wait(set(self._cleanup), timeout=1.0)
        for provider in self._owned.values():
            with contextlib.suppress(Exception):
                await provider.aclose()

    # -- off the request path -------------------------------------------------------------
    async def _run(self, judge: _Judge, case: _Case) -> None:
        result = Judgment()
        try:
            result = await self._judge(judge, case)
        except asyncio.CancelledError:
            result.fail("failed", "cancelled: the gateway stopped before the judge finished")
            await self._record(judge, case, result)
            raise
        except Exception as exc:
            log.exception("request %s: judging failed", case.request_id)
            result.fail("failed", f"{type(exc).__name__}: {exc}")
        await self._record(judge, case, result)

    async def _judge(self, judge: _Judge, case: _Case) -> Judgment:
        result = Judgment()
        report: Report | None = None
        if judge.provider is not None:
            try:
                report = await self._ask(judge, case, result)
            except BudgetExceededError as exc:
                result.fail("failed", f"budget_exceeded: {exc}")
                return result  # nothing else happens
            except _JudgeTimeout as exc:
                result.fail("timeout", str(exc))
            except UpstreamTimeout as exc:  # the connection itself timed out
                result.fail("timeout", f"{type(exc).__name__}: {exc}")
            except ProviderError as exc:
                result.fail("failed", f"{type(exc).__name__}: {exc}")
            except JudgeParseError as exc:
                result.fail("failed", str(exc))
        grounding_on = judge.settings.grounding and bool(case.context)
        if report is not None or grounding_on:
            try:
                similarity = await asyncio.to_thread(
                    _similarity,
                    case.question,
                    report.questions if report is not None else None,
                    case.answer,
                    case.context if grounding_on else None,
                    self.grounding_threshold,
                )
            except Exception as exc:  # the encoder could not be loaded or run
                log.exception("request %s: embedding for judging failed", case.request_id)
                result.fail("failed", f"text encoder: {type(exc).__name__}: {exc}")
            else:
                result.relevance, result.grounding = similarity.relevance, similarity.grounding
        if report is not None:
            result.faithfulness = report.faithfulness
        return result

    async def _ask(self, judge: _Judge, case: _Case, result: Judgment) -> Report:
        """One judge call, reserved and settled against the tenant like any attempt."""
        assert judge.provider is not None and judge.model is not None and judge.card is not None
        chat = judge_request(judge.model, case.question, case.answer, case.context)
        reservation = await self._reserve(judge, case, chat)
        timeout = judge.settings.timeout_s
        started = time.monotonic()
        try:
            # This timer, not the HTTP client's (given slack), decides: one outcome either way.
            async with asyncio.timeout(timeout):
                call = ProviderCall(chat, judge.model, timeout + _HTTP_SLACK_S)
                completion = await judge.provider.complete(call)
        except TimeoutError:
            # The provider may have served it: charge the reservation (its worst case).
            result.cost_micros = reservation.reserved_micros
            await self._charge(reservation, "timeout", f"judge took over {timeout:g} s")
            raise _JudgeTimeout(f"the judge took longer than {timeout:g} s") from None
        except asyncio.CancelledError:
            self._detach(self._charge(reservation, "cancelled", "cancelled"))
            raise
        except ProviderError as exc:
            reason = type(exc).__name__
            await self.governor.db.run(
                lambda: self.governor.ledger.release(
                    reservation,
                    outcome="error",
                    reason=reason,
                    latency_ms=round((time.monotonic() - started) * 1000),
                )
            )
            raise
        usage = completion.usage
        spent = cost(usage, judge.card).exact
        micros = ceil_micros(spent) if spent > 0 else 0
        await self._settle(case, reservation, usage, micros, time.monotonic() - started)
        result.cost_micros = micros
        return parse_report(completion.content, with_claims=bool(case.context))

    async def _reserve(self, judge: _Judge, case: _Case, chat: ChatRequest) -> Reservation:
        assert judge.card is not None and judge.model is not None
        assert judge.provider_name is not None
        # Every token is at least one byte: the body bounds the input; max_tokens the output.
        body = orjson.dumps(chat.upstream_body(judge.model))
        output = min(JUDGE_MAX_TOKENS, judge.card.max_output_tokens or JUDGE_MAX_TOKENS)
        bound = Usage(text_input_tokens=len(body), output_tokens=output)
        caller = case.caller
        plan = AttemptPlan(
            request_id=case.request_id,
            attempt=case.attempt,
            tenant_id=caller.tenant.id,
            policy=caller.tenant.policy,
            user_id=caller.user,
            key_id=caller.key_id,
            route=case.route,
            pattern=case.pattern,
            tier="judge",
            provider=judge.provider_name,
            model=judge.model,
            image_count=0,
            image_detail="",
            reserved_micros=ceil_micros(cost(bound, judge.card).exact),
        )
        return await self.governor.db.run(self.governor.ledger.reserve, plan)

    async def _settle(
        self, case: _Case, reservation: Reservation, usage: Usage, micros: int, took_s: float
    ) -> None:
        spent = await self.governor.db.run(
            lambda: self.governor.ledger.settle(
                reservation, usage, micros, outcome="ok", latency_ms=round(took_s * 1000)
            )
        )
        if spent is not None:
            overrun = max(0, micros - reservation.reserved_micros)
            self.governor.check_alerts(spent, case.caller, overrun)

    async def _charge(self, reservation: Reservation, outcome: str, reason: str) -> None:
        try:
            await self.governor.db.run(
                lambda: self.governor.ledger.settle(
                    reservation,
                    Usage(),
                    reservation.reserved_micros,
                    outcome=outcome,
                    reason=reason,
                )
            )
        except Exception:
            log.exception("could not settle a judge reservation (the reconciler will)")

    def _detach(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    async def _record(self, judge: _Judge, case: _Case, result: Judgment) -> None:
        row = {
            "request_id": case.request_id,
            "tenant_id": case.caller.tenant.id,
            "route": case.route,
            "judge": judge.label[:200],
            "faithfulness": result.faithfulness,
            "relevance": result.relevance,
            "grounding": result.grounding,
            "cost_micros": result.cost_micros,
            "status": result.status,
            "error": result.error,
            "created_at": datetime.now(UTC),
        }
        try:
            await self.governor.db.run(self._insert, row)
        except Exception:
            log.exception("request %s: could not store its judgment", case.request_id)
        if result.status != "ok":
            log.warning("request %s: judgment %s: %s", case.request_id, result.status, result.error)
        if self.metrics is not None:
            for metric, score in (
                ("faithfulness", result.faithfulness),
                ("relevance", result.relevance),
                ("grounding", result.grounding),
            ):
                if score is not None:
                    self.metrics.judged.labels(case.route, metric).observe(score)
            if result.status != "ok":
                self.metrics.judge_failures.labels(case.route, result.status).inc()

    def _insert(self, row: dict[str, Any]) -> None:
        with self.governor.db.engine.begin() as conn:
            conn.execute(judgments.insert().values(**row))
