"""The stand-in's optional billing by the catalog's image rules, and its default replies."""

from __future__ import annotations

import base64
import io

import httpx
from PIL import Image

from turnout.core import count_image_tokens, load_catalog
from turnout.providers.standin import Reply, StandInServer, catalog_billing


def _page(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("1", size, 1).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _ask(url: str, model: str, detail: str, size: tuple[int, int]) -> dict[str, int]:
    body = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x" * 40},
                    {"type": "image_url", "image_url": {"url": _page(size), "detail": detail}},
                ],
            }
        ],
    }
    usage: dict[str, int] = httpx.post(f"{url}/v1/chat/completions", json=body).json()["usage"]
    return usage


def test_images_are_billed_by_the_models_rule() -> None:
    catalog = load_catalog()
    with StandInServer() as server:
        flat = _ask(server.url, "gpt-4.1", "high", (2550, 3300))["prompt_tokens"]
        server.script.bill = catalog_billing(catalog)
        billed = _ask(server.url, "gpt-4.1", "high", (2550, 3300))["prompt_tokens"]
        low = _ask(server.url, "gpt-4.1", "low", (2550, 3300))["prompt_tokens"]
        unknown = _ask(server.url, "not-in-the-catalog", "high", (2550, 3300))["prompt_tokens"]
    page = count_image_tokens(catalog.get("gpt-4.1"), 2550, 3300, "high").tokens
    assert page == 765
    assert flat == 10 + 85  # 40 characters of text, a flat 85 for the image
    assert billed == 10 + 765
    assert low == 10 + 85
    assert unknown == 10 + 85  # a model the catalog cannot price: the flat count


def test_a_scripted_prompt_count_wins_over_billing() -> None:
    with StandInServer() as server:
        server.script.bill = catalog_billing(load_catalog())
        server.script.push("gpt-4.1", Reply(prompt_tokens=7))
        assert _ask(server.url, "gpt-4.1", "high", (512, 512))["prompt_tokens"] == 7


def test_defaults_answer_when_the_queue_is_empty() -> None:
    with StandInServer() as server:
        server.script.defaults["gpt-4.1"] = Reply(content="default")
        server.script.push("gpt-4.1", Reply(content="pushed"))
        body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
        answers = [
            httpx.post(f"{server.url}/v1/chat/completions", json=body).json()["choices"][0][
                "message"
            ]["content"]
            for _ in range(3)
        ]
        other = httpx.post(
            f"{server.url}/v1/chat/completions", json={**body, "model": "gpt-4o"}
        ).json()["choices"][0]["message"]["content"]
    assert answers == ["pushed", "default", "default"]
    assert other.startswith("Simulated answer from gpt-4o")
