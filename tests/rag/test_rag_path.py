"""The rag pattern end to end through the official openai SDK: a PDF is uploaded, a
question goes down the rag path, the stand-in upstream receives the right page images and
text, the answer's citations come back structured and checked, and a citation of a source
that was not supplied escalates."""

from __future__ import annotations

import base64
import io
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from PIL import Image
from sqlalchemy import select

from tests.index.corpus import make_pdf
from turnout.gateway.governance import Database
from turnout.gateway.governance._schema import ledger
from turnout.providers.standin import Reply, StandInServer

from .conftest import Gateway, data_uri, jpeg_bytes

PAGES = [
    "The torque for the wheel bolts is 120 newton metres.",
    "Replace the cabin filter every 15000 kilometres.",
    "The warranty covers the battery for eight years.",
]


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def with_manual(gateway: Gateway, tmp_path: Path) -> tuple[str, Path]:
    """A fresh tenant with the three-page manual uploaded to `docs`; (key, pdf path)."""
    key = gateway.tenant(f"t{secrets.token_hex(4)}")
    pdf = make_pdf(tmp_path / "manual.pdf", PAGES)
    made = gateway.client(key).post(
        "/v1/collections/docs/items",
        files=[("file", ("manual.pdf", pdf.read_bytes(), "application/pdf"))],
    )
    assert made.status_code == 201, made.text
    return key, pdf


def ask(gateway: Gateway, key: str, question: str, **extra: Any) -> Any:
    return sdk(gateway, key).chat.completions.with_raw_response.create(
        model="docqa", messages=[{"role": "user", "content": question}], **extra
    )


def sent_to(standin: StandInServer, model: str = "gpt-4.1-mini") -> list[dict[str, Any]]:
    return [r.body for r in standin.script.requests_for(model)]


def render_page(pdf: Path, page: int, side: int) -> Image.Image:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    try:
        handle = document[page - 1]
        width, height = handle.get_size()
        page_image: Image.Image = handle.render(scale=side / max(width, height)).to_pil()
        return page_image.convert("RGB")
    finally:
        document.close()


def test_a_document_question_gets_pages_and_checked_citations(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, pdf = with_manual
    raw = ask(gateway, key, "What does the manual say about the wheel bolts?")
    completion = raw.parse()
    assert raw.headers["x-turnout-route"].startswith("docqa; pattern=rag")
    assert raw.headers["x-turnout-retrieval"].startswith("2 items from docs")
    assert "refers to documents" in raw.headers["x-turnout-retrieval"]
    assert "retrieve;dur=" in raw.headers["server-timing"]
    assert "embed;dur=" in raw.headers["server-timing"]

    extension = completion.model_extra["turnout"]
    supplied = extension["retrieval"]["items"]
    assert [s["marker"] for s in supplied] == [1, 2]
    assert {s["source"] for s in supplied} == {"manual.pdf"}
    pages = [s["page"] for s in supplied]
    assert len(set(pages)) == 2 and set(pages) <= {1, 2, 3}

    # What the upstream received: the system prompt asking for citations, then the numbered
    # sources (each page's text and its rendered image at the route's detail), then the
    # question as the caller sent it.
    (body,) = sent_to(standin)
    messages = body["messages"]
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
    sources = messages[1]["content"]
    texts = [p["text"] for p in sources if p["type"] == "text"]
    images = [p["image_url"] for p in sources if p["type"] == "image_url"]
    assert len(images) == 2 and all(i["detail"] == "low" for i in images)
    for marker, page in enumerate(pages, 1):
        line = next(t for t in texts if t.startswith(f"[{marker}] "))
        assert line.startswith(f"[{marker}] manual.pdf, page {page}:")
        assert PAGES[page - 1] in line.replace("\n", " ")
        data = base64.b64decode(images[marker - 1]["url"].partition(",")[2])
        got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
        want = np.asarray(render_page(pdf, page, 1024), dtype=np.float32)
        assert got.shape == want.shape
        assert np.abs(got - want).mean() < 4  # the same page, through JPEG
        for other in {1, 2, 3} - {page}:
            wrong = np.asarray(render_page(pdf, other, 1024), dtype=np.float32)
            assert np.abs(got - wrong).mean() > np.abs(got - want).mean() + 2
    assert messages[2] == {
        "role": "user",
        "content": "What does the manual say about the wheel bolts?",
    }

    # The stand-in cites [1], as asked: the citation comes back with its provenance.
    assert completion.choices[0].message.content.endswith("[1]")
    (citation,) = extension["citations"]
    assert citation == supplied[0]
    assert citation["id"] in raw.headers["x-turnout-citations"]
    assert raw.headers["x-turnout-attempts"] == "1"


def test_a_citation_of_a_source_not_supplied_escalates(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    standin.script.push("gpt-4.1-mini", Reply(content="The torque is 120 Nm [7]."))
    raw = ask(gateway, key, "What is the torque for the wheel bolts in the manual?")
    completion = raw.parse()
    assert "citation_unsupplied:7" in raw.headers["x-turnout-attempt-log"]
    assert raw.headers["x-turnout-route"].endswith("tier=strong")
    assert completion.choices[0].message.content.endswith("[1]")
    assert len(completion.model_extra["turnout"]["citations"]) == 1
    # The strong tier got the same sources.
    (strong,) = sent_to(standin, "gpt-4.1")
    assert strong["messages"][1] == sent_to(standin)[0]["messages"][1]


def test_an_answer_citing_nothing_fails_the_check(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    standin.script.push("gpt-4.1-mini", Reply(content="It is 120 Nm."))
    standin.script.push("gpt-4.1", Reply(content="Still no citation."))
    raw = ask(gateway, key, "What torque does the manual give?")
    assert "citation_missing" in raw.headers["x-turnout-attempt-log"]
    assert raw.headers["x-turnout-check-failed"] == "citation_missing"
    assert raw.parse().model_extra["turnout"]["citations"] == []


def test_the_router_sends_requests_down_the_direct_path_when_retrieval_does_not_pay(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    empty = gateway.tenant(f"t{secrets.token_hex(4)}")
    raw = ask(gateway, empty, "What does the manual say?")
    assert raw.headers["x-turnout-route"].startswith("docqa; pattern=direct")
    assert raw.headers["x-turnout-retrieval"].startswith("skipped; why=the tenant has no items")
    assert "turnout" not in (raw.parse().model_extra or {})
    assert len(sent_to(standin)[-1]["messages"]) == 1

    photo = data_uri(jpeg_bytes(Image.new("RGB", (64, 64), (9, 99, 9)), "PNG"))
    own_image = [
        {"type": "text", "text": "What colour is this?"},
        {"type": "image_url", "image_url": {"url": photo}},
    ]
    raw = ask(gateway, key, own_image)  # type: ignore[arg-type]
    assert "pattern=direct" in raw.headers["x-turnout-route"]
    assert "carries its own image" in raw.headers["x-turnout-retrieval"]

    own_image[0] = {"type": "text", "text": "Does this match the page in the manual?"}
    raw = ask(gateway, key, own_image)  # type: ignore[arg-type]
    assert "pattern=rag" in raw.headers["x-turnout-route"]
    last = sent_to(standin)[-1]["messages"][-1]["content"]  # the caller's own message, untouched
    assert last[0] == own_image[0] and last[1]["image_url"]["url"] == photo


def test_attached_pages_are_metered_like_any_image(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    raw = ask(gateway, key, "Summarise the manual's pages.")
    request_id = raw.headers["x-request-id"]
    db = Database.open(f"sqlite:///{gateway.home / 'ledger.db'}")
    try:
        with db.engine.connect() as conn:
            (row,) = conn.execute(select(ledger).where(ledger.c.request_id == request_id)).all()
    finally:
        db.close()
    assert row.image_count == 2
    assert row.image_detail == "low:2"
    assert row.image_tokens > 0


def test_a_streamed_rag_answer_ends_with_its_citations(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    stream = sdk(gateway, key).chat.completions.create(
        model="docqa",
        messages=[{"role": "user", "content": "What does the manual say about filters?"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("[1]")
    final = chunks[-1].model_extra["turnout"]
    assert [c["marker"] for c in final["citations"]] == [1]
    assert final["retrieval"]["collection"] == "docs"


def test_a_header_turns_retrieval_on_or_off_per_request_for_ablations(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    client = sdk(gateway, key)

    def asked(value: str) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="docqa",
            messages=[{"role": "user", "content": "What does the manual say?"}],
            extra_headers={"x-turnout-retrieval": value},
        )

    off = asked("off")
    assert "pattern=direct" in off.headers["x-turnout-route"]
    assert "turned retrieval off" in off.headers["x-turnout-retrieval"]
    assert len(sent_to(standin)[-1]["messages"]) == 1
    on = asked("on")
    assert "pattern=rag" in on.headers["x-turnout-route"]
    with pytest.raises(openai.BadRequestError, match="expected on or off"):
        asked("maybe")


def test_the_log_line_and_metrics_carry_the_retrieval(
    gateway: Gateway,
    standin: StandInServer,
    with_manual: tuple[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json
    import logging
    import time

    import httpx

    caplog.set_level(logging.INFO, logger="turnout.gateway.requests")
    key, _ = with_manual
    raw = ask(gateway, key, "Which page of the manual covers the battery?")
    supplied = [s["id"] for s in raw.parse().model_extra["turnout"]["retrieval"]["items"]]
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while not lines and time.monotonic() < deadline:
        lines = [
            json.loads(r.getMessage())
            for r in caplog.records
            if r.name == "turnout.gateway.requests" and request_id in r.getMessage()
        ]
        time.sleep(0.02)
    (line,) = lines
    assert line["pattern"] == "rag" and line["modality"] == "document"
    assert line["retrieval"] == "2 items; why=the message refers to documents"
    assert line["retrieved_ids"] == supplied
    assert {"embed", "retrieve", "attach"} <= set(line["stages_ms"])
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'stage="retrieve"' in metrics and 'pattern="rag"' in metrics


def test_a_source_deleted_since_indexing_still_gives_its_text(
    gateway: Gateway, standin: StandInServer, with_manual: tuple[str, Path]
) -> None:
    key, _ = with_manual
    # (Retrieval off: nothing rendered, so no picture of the manual is cached.)
    hello = ask(gateway, key, "Hello", extra_headers={"x-turnout-retrieval": "off"})
    tenant = hello.headers["x-turnout-tenant"]
    (gateway.home / "uploads" / "docs" / tenant / "manual.pdf").unlink()
    raw = ask(gateway, key, "What does the manual say about the battery?")
    assert "pattern=rag" in raw.headers["x-turnout-route"]
    sources = sent_to(standin)[-1]["messages"][1]["content"]
    assert not [p for p in sources if p["type"] == "image_url"]
    assert sum(p["text"].startswith("[") for p in sources if p["type"] == "text") == 2
