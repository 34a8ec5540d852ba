"""The demo's traffic: what two tenants' clients send through the official `openai` SDK.

Nothing here counts anything for the summary: the summary reads the gateway's ledger and
metrics. What a phase returns is what its client saw, for the narration.
"""

from __future__ import annotations

import base64
import functools
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._corpus import SCAN_PAGES, Corpus

if TYPE_CHECKING:
    from openai import OpenAI

    from turnout.providers.standin import Script

TEXT_QUESTIONS = (
    "What is the capital of Norway?",
    "Summarize the plot of Hamlet in two sentences.",
    "Translate 'where is the train station' into German.",
    "Give me three names for a coffee shop.",
    "What is 17 percent of 240?",
    "Explain what a vector database is to a product manager.",
    "Write a haiku about espresso.",
    "Which is larger, a kilobyte or a kibibyte?",
    "List the planets of the solar system in order.",
    "What does HTTP status 429 mean?",
    "Draft a polite reply declining a meeting.",
    "How do I reverse a list in Python?",
    "What is the boiling point of water at 2,000 metres?",
    "Suggest a name for a tabby cat.",
    "What time zone is Rotterdam in?",
    "Explain recall@10 in one sentence.",
    "Is a tomato a fruit or a vegetable?",
    "What is the difference between latency and throughput?",
)
# (label, width, height, detail, question)
IMAGE_QUESTIONS = (
    ("thumbnail", 256, 256, "low", "What is in this picture?"),
    ("thumbnail", 256, 256, "high", "Describe this product photo."),
    ("web photo", 1024, 768, "auto", "What is shown here?"),
    ("web photo", 1024, 768, "low", "Write alt text for this image."),
    ("screenshot", 1920, 1080, "high", "What does this screen show?"),
    ("screenshot", 1920, 1080, "low", "Is there an error on this screen?"),
    ("phone photo", 4032, 3024, "high", "Read any text in this photo."),
    ("phone photo", 4032, 3024, "low", "What is the main subject?"),
)
VISUAL_QUERIES = ("a cat", "a rocket on the launch pad")
INCIDENT_CHUNK = 40  # pages per request once the whole document is refused
INCIDENT_LIMIT = 200  # requests at most: the loop is bounded even if nothing stops it


@dataclass
class Seen:
    """What one phase's client saw: HTTP statuses, and the error messages it was given."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def describe(self) -> str:
        parts = [
            f"{n} answered" if status == 200 else f"{n} refused with HTTP {status}"
            for status, n in sorted(self.statuses.items())
        ]
        return ", ".join(parts) or "nothing sent"


def client(url: str, key: str) -> OpenAI:
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def _call(seen: Seen, send: Callable[[], Any]) -> Any:
    from openai import APIStatusError

    try:
        result = send()
    except APIStatusError as exc:
        seen.statuses[exc.status_code] += 1
        seen.errors.append(f"{exc.status_code} {_message(exc)}")
        return None
    seen.statuses[200] += 1
    return result


def _message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    code = error.get("code") or error.get("type") or ""
    return f"{code}: {error.get('message') or exc.message}"


def _ask(
    user: OpenAI, model: str, content: Any, *, raw: bool = False, **extra: Any
) -> Callable[[], Any]:
    """A chat request ready to send: one user message to `model` (a route); `raw` keeps
    the response's headers (x-request-id, for feedback)."""
    messages: Any = [{"role": "user", "content": content}]
    chat = user.chat.completions
    create = chat.with_raw_response.create if raw else chat.create
    return functools.partial(create, model=model, messages=messages, **extra)


def _parallel(jobs: Sequence[Callable[[], Any]], workers: int = 4) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def text_questions(users: Sequence[OpenAI], script: Script | None) -> Seen:
    """Two questions that need strict JSON (a rule starts them on the strong tier), then
    plain questions on the `auto` route. On the stand-in, four cheap answers are scripted
    to fail a check (refusal, empty, cut off)."""
    from turnout.providers.standin import Reply

    seen = Seen()
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    if script is not None:
        script.push("gpt-4.1", *[Reply(content='{"city": "Oslo", "country": "Norway"}')] * 2)
    for user in users[:2]:
        wanted = {"type": "json_schema", "json_schema": {"name": "capital", "schema": schema}}
        _call(seen, _ask(user, "auto", "Capital of Norway, as JSON.", response_format=wanted))
    if script is not None:
        script.push(
            "gpt-4.1-mini",
            Reply(content="I'm sorry, but I can't help with that."),
            Reply(content=""),
            Reply(content="I'm sorry, but I can't assist with that request."),
            Reply(content="The planets, in order, are Mercury, Venus, Ear", finish_reason="length"),
        )
    jobs: list[Callable[[], Any]] = []
    for i, question in enumerate(TEXT_QUESTIONS):
        jobs.append(functools.partial(_call, seen, _ask(users[i % len(users)], "auto", question)))
    _parallel(jobs)
    return seen


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _resized(path: Any, width: int, height: int) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        out = io.BytesIO()
        image.convert("RGB").resize((width, height)).save(out, "JPEG", quality=85)
        return out.getvalue()


def image_questions(users: Sequence[OpenAI], corpus: Corpus) -> Seen:
    """Photos at thumbnail, web, screenshot and phone sizes, at low, high and auto detail.
    The users' ratings are scripted: an answer about a screenshot or phone photo sent at
    detail=low is rated down (its text was too small to read), every other one up."""
    seen = Seen()
    photos = corpus.photo_files
    jobs: list[Callable[[], Any]] = []
    rated: list[tuple[OpenAI, bool]] = []
    for i, (label, width, height, detail, question) in enumerate(IMAGE_QUESTIONS):
        uri = _data_uri(_resized(photos[i % len(photos)], width, height), "image/jpeg")
        content = [
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": uri, "detail": detail}},
        ]
        user = users[i % len(users)]
        jobs.append(functools.partial(_call, seen, _ask(user, "auto", content, raw=True)))
        rated.append((user, not (detail == "low" and label in ("screenshot", "phone photo"))))
    for (user, good), raw in zip(rated, _parallel(jobs), strict=True):
        if raw is not None:
            _rate(user, raw, good, [] if good else ["missed_detail"])
    return seen


def document_questions(
    user: OpenAI,
    questions: Iterable[tuple[str, int]],
    script: Script | None,
    miss: int = 0,
    gold: Mapping[int, str] | None = None,
    k: int = 2,
) -> Seen:
    """Questions on the `docqa` route (the rag pattern). On the stand-in, `miss` cheap
    answers are scripted to leave out their citation, which the citations check fails.
    With `gold` (page -> item id), each request names the page that holds its answer, as an
    evaluation run does, so the gateway tracks retrieval recall@k. The user rates an answer
    up when its citations include that page, down otherwise."""
    from turnout.providers.standin import Reply

    if script is not None and miss:
        script.push("gpt-4.1-mini", *[Reply(content="It is in the handbook.") for _ in range(miss)])
    seen = Seen()
    for question, page in questions:
        headers = {}
        if gold is not None and page in gold:
            headers = {"x-turnout-gold-ids": gold[page], "x-turnout-recall-k": str(k)}
        raw = _call(seen, _ask(user, "docqa", question, raw=True, extra_headers=headers))
        if raw is None:
            continue
        extra = getattr(raw.parse(), "model_extra", None) or {}
        citations = (extra.get("turnout") or {}).get("citations") or []
        pages = [c.get("page") for c in citations]
        _rate(user, raw, page in pages, [] if page in pages else ["wrong_source"])
        where = ", ".join(f"p.{p}" for p in pages) or "none"
        seen.lines.append(f"{question[:64]:<64}  cited {where} (the answer is on p.{page})")
    return seen


def _rate(user: OpenAI, raw: Any, good: bool, labels: list[str]) -> None:
    """The user's thumbs up or down on an answer (`POST /v1/feedback`)."""
    body = {"request_id": raw.headers["x-request-id"], "rating": "up" if good else "down"}
    user.post("/feedback", cast_to=object, body={**body, "labels": labels})


def upload(url: str, key: str, collection: str, path: Any) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as http:
        response = http.post(
            f"/v1/collections/{collection}/items",
            files=[("file", (path.name, path.read_bytes(), "application/pdf"))],
            timeout=120,
        )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def visual_searches(user: OpenAI, corpus: Corpus) -> Seen:
    """Text-to-image and image-to-image searches over the photos, through the SDK's own
    request method (the search endpoint is turnout's, not OpenAI's)."""
    seen = Seen()
    coffee = next(p for p in corpus.photo_files if p.stem == "coffee")
    queries: list[tuple[str, dict[str, Any]]] = [
        (f"text {q!r}", {"query": q}) for q in VISUAL_QUERIES
    ]
    queries.append(
        (
            "image: a smaller copy of coffee.jpg",
            {"image": _data_uri(_resized(coffee, 300, 200), "image/jpeg")},
        )
    )
    for label, query in queries:
        body = {"collection": "photos", "k": 3, **query}
        found = _call(seen, functools.partial(user.post, "/search", cast_to=object, body=body))
        if found is None:
            continue
        hits = ", ".join(
            f"{h['source'].rsplit('/', 1)[-1]} ({h['score']:.2f})" for h in found["data"]
        )
        seen.lines.append(f"{label:<38} -> {hits}")
    return seen


def incident(user: OpenAI, pages: Sequence[bytes]) -> Seen:
    """The seed's incident: a client sends a whole scanned document at high detail; refused
    by the image-token cap, it re-sends the document in chunks under the cap, pass after
    pass, until the tenant's daily budget stops it."""
    seen = Seen()
    uris = [_data_uri(page, "image/png") for page in pages]

    def send(first: int, last: int) -> Callable[[], Any]:
        parts: list[dict[str, Any]] = [
            {"type": "text", "text": f"Extract every field from pages {first + 1}-{last}."}
        ]
        parts += [
            {"type": "image_url", "image_url": {"url": uri, "detail": "high"}}
            for uri in uris[first:last]
        ]
        return _ask(user, "auto", parts, max_tokens=512)

    _call(seen, send(0, SCAN_PAGES))
    if seen.errors:
        seen.lines.append(f"the whole document ({SCAN_PAGES} pages): {seen.errors[-1]}")
    passes = 0
    while seen.sent < INCIDENT_LIMIT:
        passes += 1
        for first in range(0, SCAN_PAGES, INCIDENT_CHUNK):
            if seen.sent >= INCIDENT_LIMIT:
                break
            before = len(seen.errors)
            _call(seen, send(first, min(first + INCIDENT_CHUNK, SCAN_PAGES)))
            if len(seen.errors) > before and "budget" in seen.errors[-1]:
                seen.lines.append(
                    f"pass {passes}, pages {first + 1}-{min(first + INCIDENT_CHUNK, SCAN_PAGES)}:"
                    f" {seen.errors[-1]}"
                )
                return seen
    seen.lines.append(f"stopped by the demo's own bound of {INCIDENT_LIMIT} requests")
    return seen
