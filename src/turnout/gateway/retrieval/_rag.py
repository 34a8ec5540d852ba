"""The rag pattern: decide whether a request retrieves, attach what it finds to the
provider call, and hold the answer's citations to what was actually supplied.

Sources are numbered [1]..[n] in a message placed just before the user's question; the
system prompt asks for citations in that one form. An answer citing a number it was not
given fails the `citations` check (and escalates like any failed check); so does an answer
citing nothing, where the route requires a citation.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from turnout.core import (
    ChatRequest,
    ImagePart,
    ImageURL,
    Message,
    NotFoundError,
    RetrievalSettings,
    TextPart,
)
from turnout.providers import Completion

from ._media import SourceGoneError
from ._retrieval import Retrieval, Retrieved

_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = re.compile(r"[a-z]+")

SYSTEM_PROMPT = (
    "Answer from the numbered sources supplied with the question. After each claim, cite "
    "the source it comes from by its number in square brackets, for example [1] or [2][3]. "
    "Cite only the numbers {numbers}. If the sources do not hold the answer, say so."
)


def cited(text: str) -> list[int]:
    """The source numbers an answer cites, in order of first citation."""
    seen: list[int] = []
    for group in _CITATION.findall(text):
        for number in group.split(","):
            n = int(number)
            if n not in seen:
                seen.append(n)
    return seen


@dataclass(frozen=True)
class CitationCheck:
    """Fails an answer citing a source it was not given (or, if required, none at all)."""

    supplied: int
    require: bool

    def __call__(self, answer: Completion, request: ChatRequest) -> str | None:
        if answer.tool_calls:
            return None
        numbers = cited(answer.content or "")
        unknown = [n for n in numbers if not 1 <= n <= self.supplied]
        if unknown:
            return "citation_unsupplied:" + ",".join(str(n) for n in unknown)
        if self.require and not numbers:
            return "citation_missing"
        return None


@dataclass
class Context:
    """What retrieval found for one request and the request as the provider will see it."""

    collection: str
    why: str
    sources: list[dict[str, Any]]  # as the API shows items, with their `marker`
    request: ChatRequest
    added_bytes: int  # body bytes the sources add (text and inline images)
    timings: dict[str, float] = field(default_factory=dict)

    def citations(self, answer: str) -> list[dict[str, Any]]:
        by_marker = {s["marker"]: s for s in self.sources}
        return [by_marker[n] for n in cited(answer) if n in by_marker]

    def extension(self, answer: str | None) -> dict[str, Any]:
        """The `turnout` field of the response."""
        out: dict[str, Any] = {
            "pattern": "rag",
            "retrieval": {"collection": self.collection, "why": self.why, "items": self.sources},
        }
        if answer is not None:
            out["citations"] = self.citations(answer)
        return out

    def headers(self, answer: str | None) -> dict[str, str]:
        headers = {
            "x-turnout-retrieval": (
                f"{len(self.sources)} items from {self.collection}; why={self.why}"
            )
        }
        if answer is not None:
            headers["x-turnout-citations"] = ", ".join(
                f"[{c['marker']}] {c['id']}" + (f" p{c['page']}" if c["page"] else "")
                for c in self.citations(answer)
            )
        return headers


def question_of(chat: ChatRequest) -> tuple[int, str, str | None]:
    """(index of the last user message, its text, its first inline image's data URI)."""
    last = max((i for i, m in enumerate(chat.messages) if m.role == "user"), default=-1)
    if last < 0:
        return -1, "", None
    message = chat.messages[last]
    image = next(
        (p.image_url.url for p in message.images() if p.image_url.url.startswith("data:")),
        None,
    )
    return last, message.text().strip(), image


def decide(
    settings: RetrievalSettings,
    chat: ChatRequest,
    has_own_image: bool,
    has_items: bool,
    asked: str | None = None,
) -> tuple[bool, str]:
    """Whether this request retrieves, and why (the reason lands in a header and the log).

    `asked` is the caller's `x-turnout-retrieval` header: `off` sends the request down the
    direct path, `on` retrieves whenever there is something to retrieve; an ablation of
    the two paths on the same traffic is then a header away."""
    if asked == "off":
        return False, "the caller turned retrieval off (x-turnout-retrieval: off)"
    if not has_items:
        return False, f"the tenant has no items in {settings.collection}"
    last, text, image = question_of(chat)
    if last < 0 or (not text and image is None):
        return False, "no user message to search with"
    if asked == "on":
        return True, "the caller turned retrieval on (x-turnout-retrieval: on)"
    if settings.when == "always":
        return True, "route retrieves always"
    words = set(_WORD.findall(text.lower()))
    if words & {w.lower() for w in settings.document_words}:
        return True, "the message refers to documents"
    if not has_own_image:
        return True, "the message carries no image of its own"
    return False, "the message carries its own image and does not refer to documents"


class RagPath:
    def __init__(self, retrieval: Retrieval) -> None:
        self.retrieval = retrieval

    async def prepare(
        self,
        tenant: str,
        settings: RetrievalSettings,
        chat: ChatRequest,
        has_own_image: bool,
        asked: str | None = None,
    ) -> tuple[Context | None, str]:
        """Retrieve for the request (when the rule says so) and attach what was found."""
        has_items = False
        if asked != "off":
            try:
                thread = self.retrieval.collections.get(settings.collection)
                has_items = await thread.visible_to(tenant)
            except NotFoundError:
                pass
        go, why = decide(settings, chat, has_own_image, has_items, asked)
        if not go:
            return None, why
        last, text, image = question_of(chat)
        image_bytes = _data_uri_bytes(image) if image is not None and not text else None
        # Twice k: a page and its own text item count once after merging.
        found = await self.retrieval.search(
            tenant,
            settings.collection,
            text=text or None,
            image=image_bytes,
            k=min(2 * settings.k, self.retrieval.settings.search.max_k),
        )
        hits = _distinct(found.hits, settings)
        if not hits:
            return None, f"nothing in {settings.collection} scored at least {settings.min_score}"
        started = time.perf_counter()
        sources = [
            {"marker": i, **self.retrieval.describe(settings.collection, hit, text_chars=0)}
            for i, hit in enumerate(hits, 1)
        ]
        pictures: list[bytes | None] = [None] * len(hits)
        if settings.attach in ("images", "both"):
            # Every hit has a picture: a photo, or the page its text came from.
            pictures = list(await asyncio.gather(*(self._picture(hit, settings) for hit in hits)))
        parts, added = _source_parts(hits, sources, pictures, settings)
        numbers = f"1 to {len(hits)}" if len(hits) > 1 else "1"
        system = Message(role="system", content=SYSTEM_PROMPT.format(numbers=numbers))
        messages = [
            system,
            *chat.messages[:last],
            Message(role="user", content=parts),
            *chat.messages[last:],
        ]
        context = Context(
            settings.collection,
            why,
            sources,
            chat.model_copy(update={"messages": messages}),
            added + len(system.content or ""),
            {
                "embed": found.embed_s,
                "retrieve": found.search_s,
                "attach": time.perf_counter() - started,
            },
        )
        return context, why

    async def _picture(self, hit: Retrieved, settings: RetrievalSettings) -> bytes | None:
        try:
            return await self.retrieval.picture(hit.item, settings.image_side)
        except SourceGoneError:  # deleted at the source since it was indexed: text only
            return None


def _distinct(hits: Sequence[Retrieved], settings: RetrievalSettings) -> list[Retrieved]:
    """The best k hits, one per photo or page (a page's text item merges into its page)."""
    out: list[Retrieved] = []
    seen: set[tuple[str, int | None]] = set()
    for hit in hits:
        if settings.min_score is not None and hit.score < settings.min_score:
            continue
        key = (hit.item.source.source, hit.item.source.page)
        if key in seen:
            continue
        seen.add(key)
        out.append(hit)
        if len(out) == settings.k:
            break
    return out


def _source_parts(
    hits: Sequence[Retrieved],
    sources: Sequence[dict[str, Any]],
    pictures: Sequence[bytes | None],
    settings: RetrievalSettings,
) -> tuple[list[TextPart | ImagePart], int]:
    parts: list[TextPart | ImagePart] = [
        TextPart(type="text", text="Sources for the question that follows:")
    ]
    added = 0
    for hit, source, picture in zip(hits, sources, pictures, strict=True):
        where = source["source"] + (f", page {source['page']}" if source["page"] else "")
        text = hit.text if settings.attach in ("text", "both") else None
        body = f"[{source['marker']}] {where}"
        if text and settings.max_text_chars:
            body += ":\n" + text[: settings.max_text_chars]
        parts.append(TextPart(type="text", text=body))
        added += len(body.encode())
        if picture is not None:
            url = "data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii")
            parts.append(
                ImagePart(type="image_url", image_url=ImageURL(url=url, detail=settings.detail))
            )
            added += len(url)
    return parts, added


def _data_uri_bytes(url: str) -> bytes | None:
    _, _, payload = url.partition(",")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        return None
