"""Pure parts of the gateway, without HTTP: router rules, breaker, backoff, checks."""

from __future__ import annotations

import random
from typing import Any

import pytest

from turnout.core import ChatRequest, CircuitSettings, RetrySettings, RouteSettings, Usage
from turnout.gateway import RouteNotFoundError, Router
from turnout.gateway._checks import check_empty, check_json_schema, check_refusal, check_truncated
from turnout.gateway._intake import ImageFact, RequestFacts, inspect_request
from turnout.gateway._resilience import CircuitBreaker, backoff_delay
from turnout.providers import Completion

ROUTE = RouteSettings.model_validate(
    {
        "tiers": [
            {"name": "cheap", "deployments": [{"provider": "p", "model": "small"}]},
            {"name": "mid", "deployments": [{"provider": "p", "model": "medium"}]},
            {"name": "strong", "deployments": [{"provider": "p", "model": "large"}]},
        ],
        "rules": [
            {"when": {"json_schema": True}, "start": "strong"},
            {"when": {"min_image_pixels": 4_000_000}, "start": "strong"},
            {"when": {"images": True}, "start": "mid"},
            {"when": {"min_text_chars": 100}, "start": "mid"},
            {"when": {"tools": True}, "start": "mid"},
        ],
    }
)


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **kwargs}
    )


def _facts(**kwargs: Any) -> RequestFacts:
    return RequestFacts(**kwargs)


@pytest.mark.parametrize(
    ("request_kwargs", "facts", "start"),
    [
        ({}, _facts(), "cheap"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}},
                }
            },
            _facts(),
            "strong",
        ),
        ({"response_format": {"type": "json_object"}}, _facts(), "cheap"),
        ({}, _facts(images=(ImageFact("p", "high", 3000, 2000),)), "strong"),
        ({}, _facts(images=(ImageFact("p", "high", 800, 600),)), "mid"),
        ({}, _facts(images=(ImageFact("p", "auto"),)), "mid"),  # a URL: size unknown
        ({}, _facts(text_chars=150), "mid"),
        ({}, _facts(has_tools=True), "mid"),
    ],
)
def test_rules_pick_the_start(
    request_kwargs: dict[str, Any], facts: RequestFacts, start: str
) -> None:
    plan = Router({"auto": ROUTE}).plan(_request(**request_kwargs), facts)
    assert plan.ladder[0].name == start
    assert plan.tiers[-1].name == "strong"


def test_concrete_model_and_unknown_name() -> None:
    router = Router({"auto": ROUTE})
    plan = router.plan(_request(model="medium"), _facts())
    assert plan.settings is None and [d.model for d in plan.ladder[0].deployments] == ["medium"]
    assert (
        router.plan(_request(model="p/large"), _facts()).ladder[0].deployments[0].model == "large"
    )
    with pytest.raises(RouteNotFoundError, match="auto, large, medium, small"):
        router.plan(_request(model="huge"), _facts())


def test_route_config_refuses_a_rule_naming_no_tier() -> None:
    with pytest.raises(ValueError, match=r"rules\[0\].start 'gold'"):
        RouteSettings.model_validate(
            {
                "tiers": [{"name": "cheap", "deployments": [{"provider": "p", "model": "m"}]}],
                "rules": [{"when": {"tools": True}, "start": "gold"}],
            }
        )


def test_inspect_counts_text_and_images() -> None:
    request = _request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "abc"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ]
    )
    facts = inspect_request(request, ("png",))
    assert facts.text_chars == len("Be brief.") + 3
    assert facts.images[0].param == "messages[1].content[1].image_url"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_failures_in_window_and_probes_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitSettings(failures=3, window_s=10, cooldown_s=5), clock)
    for t in (0, 1):
        clock.now = t
        breaker.record_failure()
    clock.now = 12  # the first two fell out of the window
    breaker.record_failure()
    assert breaker.state == "closed"
    clock.now = 13
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 18.5
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe only
    breaker.record_failure()  # the probe failed: open again, a fresh cooldown
    assert breaker.state == "open"
    clock.now = 24
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_backoff_honours_retry_after_and_caps() -> None:
    policy = RetrySettings(attempts=3, base_delay_s=0.5, max_delay_s=4)
    assert backoff_delay(0, policy, retry_after=2.5) == 2.5
    assert backoff_delay(0, policy, retry_after=60) == 4
    rng = random.Random(7)
    delays = [backoff_delay(n, policy, None, rng) for n in range(6) for _ in range(50)]
    assert all(0 <= d <= 4 for d in delays)
    assert max(backoff_delay(0, policy, None, rng) for _ in range(100)) <= 0.5


def _answer(content: str | None, finish: str = "stop", **kwargs: Any) -> Completion:
    return Completion(body={}, usage=Usage(), content=content, finish_reason=finish, **kwargs)


def test_checks() -> None:
    # \u2019 is the typographic apostrophe models often write.
    plain = _request()
    assert check_empty(_answer(""), plain) == "empty"
    assert check_empty(_answer("", tool_calls=[{"id": "1"}]), plain) is None
    assert (
        check_refusal(
            _answer("I\u2019m sorry, but I can\u2019t help."),
            plain,
        )
        == "refusal"
    )
    assert check_refusal(_answer("Sorry for the wait: the answer is 4."), plain) is None
    assert check_truncated(_answer("abc", "length"), plain) == "truncated"
    assert check_truncated(_answer("abc", "length"), _request(max_tokens=5)) is None
    schema_req = _request(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object", "required": ["a"]}},
        }
    )
    assert check_json_schema(_answer('{"a": 1}'), schema_req) is None
    assert check_json_schema(_answer('{"b": 1}'), schema_req) == "schema_mismatch:answer"
    assert check_json_schema(_answer("not json"), schema_req) == "invalid_json"
    assert (
        check_json_schema(_answer("[1]"), _request(response_format={"type": "json_object"}))
        == "invalid_json"
    )
    assert check_json_schema(_answer("anything"), plain) is None


def _jpeg_uri(size: tuple[int, int], icc_bytes: int = 0) -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    extra = {"icc_profile": b"\0" * icc_bytes} if icc_bytes else {}
    Image.new("RGB", size, (1, 2, 3)).save(out, format="JPEG", **extra)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize("icc_bytes", [0, 50_000, 300_000])
def test_data_uri_size_found_past_large_metadata(icc_bytes: int) -> None:
    # A JPEG's size follows its metadata: a big ICC profile pushes it past the first prefix.
    uri = _jpeg_uri((640, 360), icc_bytes)
    request = _request(
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]}]
    )
    image = inspect_request(request, ("jpeg",)).images[0]
    assert (image.width, image.height, image.format) == (640, 360, "jpeg")
    assert image.nbytes > icc_bytes


@pytest.mark.parametrize("payload", ["AAAA=AAA", "AAA", "AAAA\u00e9AAA", "", "AA AA"])
def test_data_uri_that_does_not_decode(payload: str) -> None:
    from turnout.core import InvalidImageError

    request = _request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + payload}}
                ],
            }
        ]
    )
    with pytest.raises(InvalidImageError, match="does not decode"):
        inspect_request(request, ("png",))


def test_breaker_probe_that_never_reports_back_expires() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitSettings(failures=1, window_s=10, cooldown_s=5), clock)
    breaker.record_failure()
    clock.now = 5
    assert breaker.allow()  # the probe goes out... and its request is cancelled
    clock.now = 9
    assert not breaker.allow()
    clock.now = 10
    assert breaker.allow()  # a fresh probe after another cooldown
