"""Bad input gets an OpenAI-shaped error with the right status, and the gateway keeps serving."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import pytest

from turnout.providers.standin import Reply, StandInServer

from .harness import png_data_uri, route_settings, running_gateway, sdk

USER = [{"role": "user", "content": "hi"}]


def _image(url: str, detail: str = "auto") -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url, "detail": detail}}],
        }
    ]


CASES: list[tuple[str, Any, int, str]] = [
    ("malformed json", b'{"model": "auto", "messages": [', 400, "invalid_json"),
    ("not an object", b"[1, 2, 3]", 422, "invalid_value"),
    ("no messages", {"model": "auto"}, 422, "invalid_value"),
    ("wrong type", {"model": "auto", "messages": USER, "temperature": "hot"}, 422, "invalid_value"),
    (
        "temperature range",
        {"model": "auto", "messages": USER, "temperature": 9},
        422,
        "invalid_value",
    ),
    (
        "bad role",
        {"model": "auto", "messages": [{"role": "wizard", "content": "x"}]},
        422,
        "invalid_value",
    ),
    ("n above 1", {"model": "auto", "messages": USER, "n": 3}, 422, "invalid_value"),
    ("image not a url", {"model": "auto", "messages": _image("cat.jpg")}, 400, "invalid_image"),
    (
        "bad base64",
        {"model": "auto", "messages": _image("data:image/png;base64,@@@@")},
        400,
        "invalid_image",
    ),
    (
        "not an image",
        {
            "model": "auto",
            "messages": _image(
                "data:image/png;base64," + base64.b64encode(b"just some text, no pixels").decode()
            ),
        },
        400,
        "invalid_image",
    ),
    (
        "unsupported type",
        {"model": "auto", "messages": _image(png_data_uri((8, 8), "BMP"))},
        415,
        "unsupported_media_type",
    ),
    (
        "bad detail",
        {"model": "auto", "messages": _image(png_data_uri((8, 8)), "ultra")},
        422,
        "invalid_value",
    ),
    ("unknown route", {"model": "gpt-99", "messages": USER}, 404, "model_not_found"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(
    gateway: str, standin: StandInServer, name: str, body: Any, status: int, code: str
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = httpx.post(
        f"{gateway}/v1/chat/completions", headers={"content-type": "application/json"}, **kwargs
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    assert "Traceback" not in r.text
    assert r.headers["x-request-id"]
    assert not standin.script.received, "a bad request reached the upstream"
    # ...and the gateway still serves.
    assert (
        httpx.post(
            f"{gateway}/v1/chat/completions", json={"model": "auto", "messages": USER}
        ).status_code
        == 200
    )


def test_wrong_field_is_named_in_param(gateway: str) -> None:
    r = httpx.post(
        f"{gateway}/v1/chat/completions", json={"model": "auto", "messages": USER, "max_tokens": -5}
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "max_tokens"


def test_body_over_limit_is_413(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url, gateway={"max_body_bytes": 50_000})
    with running_gateway(settings) as url:
        big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 60_000}]}
        with pytest.raises(openai.APIStatusError) as info:
            sdk(url).chat.completions.create(**big)
        assert info.value.status_code == 413
        assert "at most 50,000" in info.value.body["message"]  # type: ignore[index]


def test_sdk_raises_typed_errors(gateway: str, standin: StandInServer) -> None:
    client = sdk(gateway)
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="auto", messages=[{"role": "wizard", "content": "x"}])  # type: ignore[misc,list-item]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=_image("ftp://x/y.png"))  # type: ignore[arg-type]
    standin.script.push("gpt-4.1-mini", Reply(status=500, times=None))
    standin.script.push("backup-mini", Reply(status=500, times=None))
    standin.script.push("gpt-4.1", Reply(status=500, error_message="model overloaded", times=None))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="auto", messages=USER)
    assert info.value.status_code == 502
    assert "upstream answered 500: model overloaded" in info.value.body["message"]  # type: ignore[index]
