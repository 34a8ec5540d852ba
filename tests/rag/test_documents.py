"""Document collections behind the gateway: uploads made into page text and passages, a
question answered from the right page found by dense text and BM25 (the real MiniLM model),
fused with page images, and cited down to the passage's region."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.index.corpus import make_pdf
from turnout.core import Settings
from turnout.gateway import BackgroundGateway
from turnout.providers.standin import StandInServer

from .conftest import ADMIN, Gateway, rag_settings

PAGES = [
    "The torque for the wheel bolts is 120 newton metres. Tighten them in a star pattern.",
    "Replace the cabin air filter every 15000 kilometres or once a year.",
    "The warranty covers the traction battery for eight years or 160000 kilometres.",
]


@pytest.fixture(scope="module", params=["pages and text", "text only"])
def docs_gateway(
    request: pytest.FixtureRequest,
    upstream: StandInServer,
    clip_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("docs-home")
    data = rag_settings(upstream.url, home, clip_dir, k=1)
    data["search"] = {"text_encoder": "minilm"}
    if request.param == "pages and text":
        data["search"]["encoder"] = str(clip_dir)
    running = BackgroundGateway(Settings.model_validate(data))
    with running as url:
        admin = httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"})
        yield Gateway(url, home, running.app, admin)
        admin.close()


@pytest.fixture
def manual(docs_gateway: Gateway, tmp_path: Path) -> tuple[str, httpx.Client]:
    key = docs_gateway.tenant(f"t{secrets.token_hex(4)}")
    client = docs_gateway.client(key)
    pdf = make_pdf(tmp_path / "manual.pdf", PAGES)
    made = client.post(
        "/v1/collections/docs/items",
        files=[("file", ("manual.pdf", pdf.read_bytes(), "application/pdf"))],
    )
    assert made.status_code == 201, made.text
    return key, client


def test_a_question_is_answered_from_the_page_that_holds_it(
    docs_gateway: Gateway, standin: StandInServer, manual: tuple[str, httpx.Client]
) -> None:
    key, _ = manual
    sdk = openai.OpenAI(base_url=docs_gateway.url + "/v1", api_key=key, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="docqa",
        messages=[{"role": "user", "content": "How long does the warranty cover the battery?"}],
    )
    extension = raw.parse().model_extra["turnout"]
    (supplied,) = extension["retrieval"]["items"]
    assert supplied["page"] == 3 and supplied["source"] == "manual.pdf"
    assert set(supplied["scores"]) >= {"text", "bm25"}
    left, top, right, bottom = supplied["region"]  # the passage's box on the page
    assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1
    assert extension["citations"] == [supplied]

    (body,) = [r.body for r in standin.script.requests_for("gpt-4.1-mini")][-1:]
    sources = body["messages"][1]["content"]
    line = next(p["text"] for p in sources if p["type"] == "text" and p["text"].startswith("[1]"))
    assert line.startswith("[1] manual.pdf, page 3:") and "eight years" in line
    assert sum(p["type"] == "image_url" for p in sources) == 1  # the page, rendered


def test_search_fuses_retrievers_over_pages(
    docs_gateway: Gateway, manual: tuple[str, httpx.Client]
) -> None:
    _, client = manual
    found = client.post(
        "/v1/search", json={"collection": "docs", "query": "cabin air filter interval", "k": 3}
    )
    assert found.status_code == 200, found.text
    hits = found.json()["data"]
    assert hits[0]["page"] == 2
    assert "bm25" in hits[0]["scores"] and hits[0]["passages"]
    assert "cabin air filter" in hits[0]["passages"][0]["text"]
    assert len({hit["page"] for hit in hits}) == len(hits)  # one hit per page
    thumb = client.get(hits[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_other_tenants_pages_never_answer(
    docs_gateway: Gateway, manual: tuple[str, httpx.Client]
) -> None:
    other = docs_gateway.client(docs_gateway.tenant(f"t{secrets.token_hex(4)}"))
    response = other.post("/v1/search", json={"collection": "docs", "query": "battery warranty"})
    assert response.status_code == 404


def test_an_image_query_searches_page_images_or_is_refused_where_there_are_none(
    docs_gateway: Gateway, manual: tuple[str, httpx.Client]
) -> None:
    from PIL import Image

    from .conftest import data_uri, jpeg_bytes

    _, client = manual
    image = data_uri(jpeg_bytes(Image.new("RGB", (32, 32)), "PNG"))
    response = client.post("/v1/search", json={"collection": "docs", "image": image})
    if docs_gateway.app.state.retrieval.settings.search.encoder is None:
        assert response.status_code == 400, response.text
        assert "page text only" in response.json()["error"]["message"]
    else:
        assert response.status_code == 200, response.text
        assert {hit["page"] for hit in response.json()["data"]} <= {1, 2, 3}


def test_page_text_quality_is_exported(
    docs_gateway: Gateway, manual: tuple[str, httpx.Client]
) -> None:
    metrics = httpx.get(f"{docs_gateway.url}/metrics").text
    assert 'turnout_index_pages_without_text{collection="docs"' in metrics
    assert 'turnout_index_low_confidence_pages{collection="docs"' in metrics
