"""Sampled judging end to end: requests through the real gateway (openai SDK, stand-in
upstream, SQLite ledger), the judge model scripted on the stand-in, then the stored
judgments, the ledger's judge attempts and the metrics; plus Judging's configuration
checks and its shutdown, driven directly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.governance.test_gateway_governance import Admin, client, governed, rows
from turnout.core import ConfigError, Settings, Usage, cost, load_catalog
from turnout.gateway import BackgroundGateway
from turnout.gateway._upstreams import Upstreams
from turnout.gateway.governance import Governor
from turnout.gateway.governance._schema import judgments, ledger, spend
from turnout.gateway.telemetry import Judging, Observation, Stages
from turnout.gateway.telemetry._judging import JudgeParseError, parse_report, sentences
from turnout.providers.standin import Reply, StandInServer

JUDGE = "judge-model"  # the judge's name at the stand-in; priced as gpt-4.1-mini
ANSWERER = "gpt-4.1-mini"  # the cheap tier of route `auto`, which answers every request

DOCUMENT = (
    "The Eiffel Tower was completed in 1889 for the World Fair in Paris. "
    "It is 330 metres tall and made of wrought iron. "
    "Gustave Eiffel's company designed and built it."
)
QUESTION = "How tall is the Eiffel Tower, and when was it finished?"
GROUNDED = (
    "The Eiffel Tower was finished in 1889 for the Paris World Fair. "
    "It stands 330 metres tall. It was built from wrought iron by Eiffel's company."
)
UNRELATED = (
    "Bananas are rich in potassium. Python is a programming language. "
    "The Amazon is the largest rainforest on Earth."
)


def verdicts(supported: int = 3, unsupported: int = 1, questions: list[str] | None = None) -> str:
    claims = [{"claim": f"claim {i}", "verdict": "supported"} for i in range(supported)]
    claims += [
        {"claim": f"other {i}", "verdict": "unsupported", "reason": "not in the context"}
        for i in range(unsupported)
    ]
    asked = questions or [
        "How tall is the Eiffel Tower?",
        "When was the Eiffel Tower completed?",
        "What is the height of the Eiffel Tower?",
    ]
    return json.dumps({"claims": claims, "questions": asked})


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


def judged(upstream: StandInServer, home: Path, **judge: Any) -> dict[str, Any]:
    """Route `auto` judged (every request unless `every` says otherwise), `other` judged
    too, `strict` never."""
    settings = governed(upstream, home)  # routes auto and strict (a copy without judge)
    routes = settings["routes"]
    routes["auto"]["judge"] = {
        "every": 1, "provider": "primary", "model": JUDGE, "catalog": "gpt-4.1-mini",
        "timeout_s": 10, **judge,
    }  # fmt: skip
    routes["other"] = {**routes["auto"], "judge": {**routes["auto"]["judge"], "every": 2}}
    return settings


@dataclass
class Gateway:
    url: str
    home: Path
    admin: Admin
    judging: Judging

    def settled(self, count: int, timeout: float = 60) -> list[Any]:
        """The stored judgments, once `count` are stored and none is in flight."""
        deadline = time.monotonic() + timeout
        while True:
            found = rows(self.home, judgments)
            if len(found) >= count and self.judging.pending == 0:
                return found
            assert time.monotonic() < deadline, f"{len(found)} of {count} judgments stored"
            time.sleep(0.05)


@contextmanager
def running(settings: dict[str, Any]) -> Iterator[Gateway]:
    config = Settings.model_validate(settings)
    background = BackgroundGateway(config)
    service = background.app.state.service
    if service.judging is None:
        # Until build_app constructs Judging itself: the same objects the app serves with.
        service.judging = Judging(
            config,
            service.upstreams,
            background.app.state.governor,
            background.app.state.telemetry.metrics,
            load_catalog(config.catalog_files),
        )
    with background as url:
        gateway = Gateway(url, config.home_dir, Admin(url), service.judging)
        yield gateway
        deadline = time.monotonic() + 30
        while gateway.judging.pending and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def gateway(upstream: StandInServer, tmp_path: Path) -> Iterator[Gateway]:
    upstream.script.reset()
    with running(judged(upstream, tmp_path)) as gw:
        yield gw


def ask(gw: Gateway, key: str, request_id: str, *, route: str = "auto", **extra: Any) -> Any:
    raw = client(gw.url, key).chat.completions.with_raw_response.create(
        model=route,
        messages=extra.pop(
            "messages",
            [
                {"role": "system", "content": f"Answer from this document.\n\n{DOCUMENT}"},
                {"role": "user", "content": QUESTION},
            ],
        ),
        extra_headers={"x-request-id": request_id},
        **extra,
    )
    assert raw.http_response.status_code == 200
    return raw


def by_request(found: list[Any]) -> dict[str, Any]:
    return {r.request_id: r for r in found}


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# -- sampling ------------------------------------------------------------------------------


def test_one_request_in_every_n_is_judged_per_route_and_unjudged_routes_never(
    upstream: StandInServer, tmp_path: Path
) -> None:
    upstream.script.reset()
    upstream.script.push(JUDGE, Reply(content=verdicts(), times=None))
    with running(judged(upstream, tmp_path, every=3)) as gw:
        key = gw.admin.tenant("acme")
        for i in range(1, 10):  # auto every 3, other every 2, strict never: interleaved
            ask(gw, key, f"auto-{i}")
            if i <= 4:
                ask(gw, key, f"other-{i}", route="other")
            if i <= 5:
                ask(gw, key, f"strict-{i}", route="strict")
        gw.settled(5)
        time.sleep(0.3)  # and nothing more arrives
        found = rows(gw.home, judgments)
    assert sorted(r.request_id for r in found) == sorted(
        ["auto-3", "auto-6", "auto-9", "other-2", "other-4"]
    )
    assert {r.route for r in found} == {"auto", "other"}
    assert all(r.status == "ok" and r.tenant_id == "acme" for r in found)
    assert len(upstream.script.requests_for(JUDGE)) == 5


# -- scores --------------------------------------------------------------------------------


def test_scores_come_from_the_judges_json_and_minilm(
    gateway: Gateway, upstream: StandInServer
) -> None:
    from turnout.retrieval import load_text_encoder

    key = gateway.admin.tenant("acme")
    on_topic = [
        "How tall is the Eiffel Tower?",
        "When was the Eiffel Tower finished?",
        "What is the Eiffel Tower's height and completion date?",
    ]
    off_topic = ["What is a good banana bread recipe?", "How do I learn Python?", "Who won?"]
    upstream.script.push(ANSWERER, Reply(content=GROUNDED), Reply(content=GROUNDED))
    upstream.script.push(
        JUDGE,
        Reply(content=verdicts(3, 1, on_topic)),
        Reply(content="```json\n" + verdicts(1, 4, off_topic) + "\n```"),
    )
    ask(gateway, key, "score-1")
    gateway.settled(1)
    ask(gateway, key, "score-2")
    found = by_request(gateway.settled(2))

    first, second = found["score-1"], found["score-2"]
    assert first.status == "ok" and first.error is None and first.judge == f"primary/{JUDGE}"
    assert first.faithfulness == pytest.approx(0.75)  # 3 of 4 claims supported
    assert second.faithfulness == pytest.approx(0.2)  # 1 of 5

    encoder = load_text_encoder("minilm")
    for row, asked in ((first, on_topic), (second, off_topic)):
        vectors = encoder.embed_texts([QUESTION, *asked])
        expected = float((vectors[1:] @ vectors[0]).mean())
        assert row.relevance == pytest.approx(max(0.0, expected), abs=1e-4)
    assert first.relevance > 0.7 and second.relevance < 0.3
    assert first.grounding == pytest.approx(1.0)  # every sentence is in the document

    # The judge saw the document as context, the user's question and the answer.
    judge_call = upstream.script.requests_for(JUDGE)[0].body
    prompt = judge_call["messages"][-1]["content"]
    assert DOCUMENT in prompt and QUESTION in prompt and GROUNDED in prompt
    assert judge_call["temperature"] == 0 and judge_call["max_tokens"] > 0

    count = metric(gateway.url, "turnout_judge_score_count", route="auto", metric="faithfulness")
    total = metric(gateway.url, "turnout_judge_score_sum", route="auto", metric="faithfulness")
    assert count == 2 and total == pytest.approx(0.95)
    assert metric(gateway.url, "turnout_judge_score_count", route="auto", metric="relevance") == 2
    assert metric(gateway.url, "turnout_judge_score_count", route="auto", metric="grounding") == 2


def test_grounding_is_high_for_a_copied_answer_and_low_for_an_unrelated_one(
    upstream: StandInServer, tmp_path: Path
) -> None:
    upstream.script.reset()
    settings = judged(upstream, tmp_path)
    settings["routes"]["auto"]["judge"] = {"every": 1}  # local grounding only: no judge model
    upstream.script.push(ANSWERER, Reply(content=GROUNDED), Reply(content=UNRELATED))
    with running(settings) as gw:
        key = gw.admin.tenant("acme")
        ask(gw, key, "copied")
        ask(gw, key, "unrelated")
        ask(gw, key, "no-context", messages=[{"role": "user", "content": QUESTION}])
        found = by_request(gw.settled(3))
        ledger_rows = rows(gw.home, ledger)
    assert found["copied"].grounding == pytest.approx(1.0)
    assert found["unrelated"].grounding == pytest.approx(0.0)
    assert found["no-context"].grounding is None  # nothing to be grounded in
    for row in found.values():
        assert row.judge == "minilm-grounding" and row.status == "ok" and row.cost_micros == 0
        assert row.faithfulness is None and row.relevance is None
    assert upstream.script.requests_for(JUDGE) == []
    assert all(r.tier != "judge" for r in ledger_rows)


def test_answers_and_contexts_split_into_sentences_and_lines() -> None:
    assert sentences("One thing. Two things!\n- Three things?\n\nok") == [
        "One thing.", "Two things!", "Three things?",
    ]  # fmt: skip


# -- cost ------------------------------------------------------------------------------------


def test_the_judges_cost_is_a_ledger_attempt_of_the_request_against_the_tenant(
    gateway: Gateway, upstream: StandInServer
) -> None:
    key = gateway.admin.tenant("acme")
    upstream.script.push(
        JUDGE, Reply(content=verdicts(), prompt_tokens=1000, completion_tokens=200)
    )
    ask(gateway, key, "costly")
    (judgment,) = gateway.settled(1)
    attempts = sorted(
        (r for r in rows(gateway.home, ledger) if r.request_id == "costly"),
        key=lambda r: r.attempt,
    )
    card = load_catalog().get("gpt-4.1-mini")
    exact = cost(Usage(text_input_tokens=1000, output_tokens=200), card).exact
    expected = int((exact * 1_000_000).to_integral_value(rounding=ROUND_CEILING))
    assert [(r.attempt, r.tier) for r in attempts] == [(1, "cheap"), (2, "judge")]
    judge_row = attempts[1]
    assert (judge_row.tenant_id, judge_row.provider, judge_row.model) == ("acme", "primary", JUDGE)
    assert (judge_row.route, judge_row.pattern, judge_row.state) == ("auto", "direct", "settled")
    assert judge_row.cost_micros == expected == judgment.cost_micros
    assert (judge_row.text_tokens, judge_row.output_tokens) == (1000, 200)
    assert judge_row.reserved_micros >= expected
    # The tenant's running total holds the request and its judge.
    day = [r for r in rows(gateway.home, spend) if r.tenant_id == "acme" and r.period == "day"]
    assert [(r.spent_micros, r.reserved_micros) for r in day] == [
        (sum(r.cost_micros for r in attempts), 0)
    ]


def test_a_judge_the_budget_refuses_is_stored_failed_and_nothing_else_happens(
    gateway: Gateway, upstream: StandInServer
) -> None:
    # The request (10 output tokens) fits; the judge's worst case (1,024 output tokens) not.
    key = gateway.admin.tenant("thrifty", daily_budget_usd="0.0005")
    ask(gateway, key, "thrifty-1", max_tokens=10)
    (judgment,) = gateway.settled(1)
    assert judgment.status == "failed" and "budget" in judgment.error
    assert judgment.cost_micros == 0 and judgment.tenant_id == "thrifty"
    assert (judgment.faithfulness, judgment.relevance, judgment.grounding) == (None, None, None)
    judge_rows = [r for r in rows(gateway.home, ledger) if r.tier == "judge"]
    assert [(r.state, r.cost_micros) for r in judge_rows] == [("refused", 0)]
    assert upstream.script.requests_for(JUDGE) == []
    assert metric(gateway.url, "turnout_judge_failures_total", route="auto", status="failed") == 1


# -- failures ------------------------------------------------------------------------------


def test_a_judge_http_error_is_stored_failed_and_its_reservation_released(
    gateway: Gateway, upstream: StandInServer
) -> None:
    key = gateway.admin.tenant("acme")
    upstream.script.push(JUDGE, Reply(status=500, error_message="judge exploded"))
    raw = ask(gateway, key, "err-1")
    (judgment,) = gateway.settled(1)
    assert raw.parse().choices[0].message.content
    assert judgment.status == "failed" and "judge exploded" in judgment.error
    assert judgment.faithfulness is None and judgment.relevance is None
    assert judgment.grounding is not None  # the local indicator does not need the judge
    (judge_row,) = [r for r in rows(gateway.home, ledger) if r.tier == "judge"]
    assert (judge_row.state, judge_row.cost_micros) == ("released", 0)
    assert metric(gateway.url, "turnout_judge_failures_total", route="auto", status="failed") == 1
    # The gateway's own breaker for the deployment is not the judge's business.
    assert ask(gateway, key, "err-2").http_response.status_code == 200


def test_malformed_judge_json_is_stored_failed(gateway: Gateway, upstream: StandInServer) -> None:
    key = gateway.admin.tenant("acme")
    bad_verdict = json.dumps({"claims": [{"claim": "x", "verdict": "maybe"}], "questions": ["q?"]})
    upstream.script.push(
        JUDGE, Reply(content="Sure! The answer is faithful."), Reply(content=bad_verdict)
    )
    ask(gateway, key, "bad-1")
    gateway.settled(1)
    ask(gateway, key, "bad-2")
    found = by_request(gateway.settled(2))
    assert found["bad-1"].status == "failed" and "not JSON" in found["bad-1"].error
    assert found["bad-2"].status == "failed" and "verdict" in found["bad-2"].error
    for row in found.values():
        assert row.faithfulness is None and row.relevance is None
        assert row.cost_micros > 0  # the judge answered, so it was paid for
    assert metric(gateway.url, "turnout_judge_failures_total", route="auto", status="failed") == 2


def test_parse_report_is_strict() -> None:
    good = parse_report(verdicts(2, 2), with_claims=True)
    assert good.faithfulness == 0.5 and good.claims == 4 and len(good.questions) == 3
    assert parse_report(verdicts(2, 2), with_claims=False).faithfulness is None
    assert parse_report(verdicts(0, 0), with_claims=True).faithfulness is None  # no claims
    for bad in (
        "",
        "[]",
        '{"claims": []}',  # no questions
        '{"claims": [], "questions": []}',
        '{"claims": [], "questions": ["  "]}',
        '{"claims": [{"claim": "a", "verdict": 1}], "questions": ["q"]}',
        '{"claims": [{"claim": "a", "verdict": "supported", "score": 1}], "questions": ["q"]}',
        '{"claims": [], "questions": ["q"], "extra": true}',
        "Here you go: " + verdicts(),
    ):
        with pytest.raises(JudgeParseError):
            parse_report(bad, with_claims=True)


def test_a_judge_slower_than_its_timeout_is_stored_timeout_and_charged_its_reservation(
    upstream: StandInServer, tmp_path: Path
) -> None:
    upstream.script.reset()
    upstream.script.push(JUDGE, Reply(content=verdicts(), delay=3))
    with running(judged(upstream, tmp_path, timeout_s=0.3)) as gw:
        key = gw.admin.tenant("acme")
        ask(gw, key, "slow-1")
        (judgment,) = gw.settled(1)
        failures = metric(gw.url, "turnout_judge_failures_total", route="auto", status="timeout")
        (judge_row,) = [r for r in rows(gw.home, ledger) if r.tier == "judge"]
    assert judgment.status == "timeout" and "0.3" in judgment.error
    assert judgment.faithfulness is None and judgment.relevance is None
    assert failures == 1
    # It may have been served: charged its worst case, as the gateway charges a cut call.
    assert judge_row.state == "settled" and judge_row.outcome == "timeout"
    assert judge_row.cost_micros == judge_row.reserved_micros == judgment.cost_micros > 0


def test_the_response_does_not_wait_for_a_slow_judge(
    gateway: Gateway, upstream: StandInServer
) -> None:
    key = gateway.admin.tenant("acme")
    upstream.script.push(JUDGE, Reply(content=verdicts(), delay=2))
    started = time.monotonic()
    ask(gateway, key, "quick")
    took = time.monotonic() - started
    in_flight = gateway.judging.pending
    stored_then = rows(gateway.home, judgments)
    (judgment,) = gateway.settled(1)
    assert took < 2 and in_flight == 1 and stored_then == []
    assert judgment.status == "ok" and judgment.request_id == "quick"


# -- configuration and shutdown, directly --------------------------------------------------


def test_a_judge_must_name_a_configured_provider_and_a_catalogued_model(
    upstream: StandInServer, tmp_path: Path
) -> None:
    catalog = load_catalog()

    def build(**judge: Any) -> None:
        settings = judged(upstream, tmp_path, **judge)
        del settings["routes"]["other"]
        config = Settings.model_validate(settings)
        upstreams = Upstreams.build(config.providers, config.routes, catalog)
        governor = Governor.open(config)
        try:
            Judging(config, upstreams, governor, None, catalog)
        finally:
            governor.db.close()

    with pytest.raises(ConfigError, match=r"routes\.auto\.judge\.provider: unknown provider"):
        build(provider="nowhere")
    with pytest.raises(ConfigError, match=r"routes\.auto\.judge\.catalog: model 'no-such'"):
        build(catalog="no-such")
    with pytest.raises(ConfigError, match=r"routes\.auto\.judge\.catalog: model 'mystery'"):
        build(model="mystery", catalog=None)
    with pytest.raises(ConfigError, match=r"routes\.auto\.judge: neither"):
        build(provider=None, model=None, catalog=None, grounding=False)
    with pytest.raises(ConfigError, match=r"routes\.auto\.judge\.provider"):
        build(provider=None)  # a model without its provider
    build()  # and the good one builds


def test_stop_cancels_a_judgment_still_in_flight_and_records_it(
    upstream: StandInServer, tmp_path: Path
) -> None:
    upstream.script.reset()
    upstream.script.push(JUDGE, Reply(content=verdicts(), delay=6, times=2))
    settings = judged(upstream, tmp_path, timeout_s=60)
    config = Settings.model_validate(settings)
    catalog = load_catalog()

    async def scenario() -> float:
        upstreams = Upstreams.build(config.providers, config.routes, catalog)
        governor = Governor.open(config)
        await governor.start()
        judging = Judging(config, upstreams, governor, None, catalog)
        obs = Observation("stop-1", Stages(), time.monotonic(), route="auto", pattern="direct")
        from turnout.core import ChatRequest

        request = ChatRequest.model_validate(
            {"model": "auto", "messages": [{"role": "user", "content": QUESTION}]}
        )
        judging.consider(obs, request, GROUNDED, governor.directory.anonymous(None))
        judging.consider(obs, request, GROUNDED, governor.directory.anonymous(None))  # 2 of 2
        await asyncio.sleep(0.5)  # the judge call is in flight
        assert judging.pending == 2
        started = time.monotonic()
        await judging.stop()
        took = time.monotonic() - started
        judging.consider(obs, request, GROUNDED, governor.directory.anonymous(None))
        assert judging.pending == 0  # stopped: nothing more is scheduled
        await upstreams.aclose()
        await governor.stop()
        return took

    took = asyncio.run(scenario())
    assert took < 6
    found = rows(config.home_dir, judgments)
    assert len(found) == 2
    assert all(r.status == "failed" and "cancelled" in r.error for r in found)
    judge_rows = [r for r in rows(config.home_dir, ledger) if r.tier == "judge"]
    # Cancelled mid-call: charged the worst case, never left reserved.
    assert [r.state for r in judge_rows] == ["settled", "settled"]
    assert all(r.outcome == "cancelled" and r.cost_micros == r.reserved_micros for r in judge_rows)
