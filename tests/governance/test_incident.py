"""The seed's incident, replayed: a tenant re-sends a 487-page scanned document at high
detail. Its $100 daily budget (or its image cap) stops it; alerts fire at 50 and 80
percent before the cap; the ledger shows where the money went."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.gateway.harness import running_gateway
from turnout.providers.standin import Reply, StandInServer

from .test_gateway_governance import Admin, Webhook, governed, rows

PAGES = 487
# A premium vision model (catalog overlay): $25 per million input tokens, $100 output;
# image tokens by OpenAI's tile rule. One scanned page (1700x2200) at high detail is 765
# tokens, so one upload is 372,555 image tokens: about $9.31 before any text.
CATALOG = {
    "models": [
        {
            "id": "scan-reader",
            "provider": "openai",
            "name": "Scan Reader (test fixture)",
            "latency": {"p50": 2.0, "p95": 5.0, "source": "prior"},
            "modalities": {"input": ["text", "image"], "output": ["text"]},
            "context_window": 1_000_000,
            "max_output_tokens": 16384,
            "tier": 4,
            "price": {
                "input": "25",
                "output": "100",
                "source": "test fixture",
                "as_of": "2026-11-01",
            },
            "image_tokens": {"rule": "openai_tile", "base": 85, "tile": 170},
        }
    ]
}


def _page_uri() -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (1700, 2200), 250).save(out, "PNG")  # a blank scan, a few KB
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _upload(url: str, key: str, pages: list[dict[str, Any]]) -> Any:
    sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)
    return sdk.chat.completions.with_raw_response.create(
        model="scan-reader",
        max_tokens=500,
        user="uploader",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Summarise this contract."}, *pages],
            }
        ],
    )


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(CATALOG))
    return path


def _settings(standin: StandInServer, home: Path, catalog: Path, hook: Webhook) -> Any:
    settings = governed(standin, home, alerts={"webhook_url": hook.url})
    settings["catalog_files"] = [str(catalog)]
    settings["routes"]["auto"]["tiers"][0]["deployments"].append(
        {"provider": "primary", "model": "scan-reader"}
    )
    return settings


def test_the_budget_stops_the_runaway_upload_after_alerts(
    standin: StandInServer, tmp_path: Path, catalog_file: Path
) -> None:
    hook = Webhook()
    page = {"type": "image_url", "image_url": {"url": _page_uri(), "detail": "high"}}
    # The provider bills what the pages really cost: 487 x 765 image tokens plus text.
    standin.script.push(
        "scan-reader",
        Reply(prompt_tokens=PAGES * 765 + 40, completion_tokens=500, times=None),
    )
    try:
        with running_gateway(_settings(standin, tmp_path, catalog_file, hook)) as url:
            key = Admin(url).tenant("acme-legal", daily_budget_usd="100")
            served, refused = 0, None
            for _ in range(20):
                try:
                    reply = _upload(url, key, [page] * PAGES)
                    served += 1
                    assert reply.headers["x-turnout-model"] == "primary/scan-reader"
                except openai.RateLimitError as exc:
                    refused = exc
                    break
            deadline = time.monotonic() + 5
            while len(hook.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        hook.close()
    assert refused is not None and refused.code == "budget_exceeded"
    assert "daily budget of $100.00" in refused.message
    ledger = [r for r in rows(tmp_path) if r.tenant_id == "acme-legal"]
    settled = [r for r in ledger if r.state == "settled"]
    assert len(settled) == served == 10  # ten uploads of ~$9.37 fit in $100; the 11th not
    spent = sum(r.cost_micros for r in settled)
    assert spent <= 100_000_000
    assert all(r.image_count == PAGES and r.image_detail == "high:487" for r in settled)
    assert all(r.image_tokens == PAGES * 765 for r in settled)
    # Alerts at 50 and 80 percent, both fired while requests were still being served.
    day_alerts = [a for a in hook.received if a["kind"] == "day"]
    assert [a["threshold_percent"] for a in day_alerts][:2] == [50, 80]
    assert all(float(a["spent_usd"]) < 100 for a in day_alerts[:2])
    top = day_alerts[1]["top_requests"][0]
    assert top["images"] == PAGES and top["image_tokens"] == PAGES * 765


def test_an_image_cap_stops_it_at_the_first_upload(
    standin: StandInServer, tmp_path: Path, catalog_file: Path
) -> None:
    hook = Webhook()
    page = {"type": "image_url", "image_url": {"url": _page_uri(), "detail": "high"}}
    try:
        with running_gateway(_settings(standin, tmp_path, catalog_file, hook)) as url:
            key = Admin(url).tenant("acme-legal", daily_budget_usd="100", image_token_cap=50_000)
            # Pages go at low detail (85 tokens, not 765) until the upload fits the cap:
            # 475 of them, leaving 12 at high detail: 475 x 85 + 12 x 765 = 49,555.
            reply = _upload(url, key, [page] * PAGES)
            note = reply.headers["x-turnout-image-cap"]
            assert (
                note == "475 image(s) sent at detail=low: 372555 -> 49555 image tokens (cap 50000)"
            )
            sent = standin.script.requests_for("scan-reader")[-1].body["messages"][0]
            details = [p["image_url"]["detail"] for p in sent["content"][1:]]
            assert details.count("low") == 475 and details.count("high") == 12
            # Two such documents in one request cannot fit even at low detail.
            with pytest.raises(openai.APIStatusError) as capped:
                _upload(url, key, [page] * (2 * PAGES))
    finally:
        hook.close()
    assert capped.value.status_code == 413
    assert capped.value.code == "image_token_cap_exceeded"
    assert "974 images" in capped.value.message
