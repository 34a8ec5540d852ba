"""Retrieval in the gateway: search a tenant's items by text, image or both; render what
was found (thumbnails, images to attach to a provider call).

Everything here is scoped to one tenant: a collection holding none of the tenant's items
is "not found", and an item of another tenant is "not found", with the same words as
one that never existed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from turnout.core import InvalidInputError, Settings

from ._collections import (
    Collections,
    CollectionThread,
    ItemNotFoundError,
    parse_public_id,
    public_id,
)
from ._embedding import Embedded, Encoders, QueryEmbedder
from ._media import Renderer, decode_query_image

if TYPE_CHECKING:
    from turnout.retrieval.index import CollectionSpec, Hit, Item, PageHit

_MODALITIES = ("image", "page", "text")
_PASSAGES_SHOWN = 2  # a document hit's best passages, as its text and in the API


@dataclass(frozen=True)
class Retrieved:
    """One result as the gateway uses it: the item to show or render (a photo, a page),
    its score and rank, the text that goes with it, the region it points at, and for a
    document collection each retriever's score and the passages that brought it in."""

    item: Item
    score: float
    rank: int
    text: str | None
    region: tuple[float, float, float, float] | None = None
    scores: dict[str, float] | None = None
    passages: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of_hit(cls, hit: Hit) -> Retrieved:
        return cls(hit.item, float(hit.score), hit.rank, hit.item.text, hit.item.source.box)

    @classmethod
    def of_page(cls, hit: PageHit) -> Retrieved:
        best = hit.passages[:_PASSAGES_SHOWN]
        passages = tuple(
            {
                "page": p.item.source.page,
                "box": list(p.item.source.box) if p.item.source.box else None,
                "text": p.item.text,
                "scores": {r: round(v, 6) for r, v in p.scores.items()},
            }
            for p in best
        )
        text = "\n".join(p.item.text for p in best if p.item.text) or hit.item.text
        region = best[0].item.source.box if best else hit.item.source.box
        scores = {r: round(v, 6) for r, v in hit.scores.items()}
        return cls(hit.item, float(hit.score), hit.rank, text, region, scores, passages)


@dataclass(frozen=True)
class Found:
    """A search's results and where its time went."""

    collection: str
    hits: list[Retrieved]
    embed_s: float
    search_s: float


@dataclass(frozen=True)
class Models:
    """A collection's query encoders: `dual` embeds text and images into its image space;
    `text` embeds text into its passages' space (document collections)."""

    dual: QueryEmbedder | None
    text: QueryEmbedder | None
    spec: CollectionSpec


def uploads_dir(settings: Settings, collection: str, tenant: str) -> Path:
    """Where a tenant's uploads to a collection are kept (and indexed from)."""
    return settings.home_dir / "uploads" / collection / tenant


class Retrieval:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collections = Collections(settings)
        self.encoders = Encoders(settings)
        self.renderer = Renderer()
        self._checked: set[tuple[str, str, str]] = set()  # (collection, check, encoder) that fit

    # -- encoders -------------------------------------------------------------------------

    async def models(self, thread: CollectionThread) -> Models:
        """The collection's encoders, loaded once and checked against what it recorded."""
        from ._collections import CollectionNotVisibleError

        spec = await thread.spec()
        if spec is None:
            raise CollectionNotVisibleError(thread.name)
        documents = spec.documents
        dual = text = None
        if documents is None or documents.images:
            dual = await self.encoders.get(self.encoders.spec_for(thread.name, spec.encoder))
            await self._check(thread, dual, "check_encoder")
        if documents is not None:
            own = None if documents.images else spec.encoder
            text = await self.encoders.get(own or documents.text_encoder, "text")
            await self._check(thread, text, "check_text_encoder")
        return Models(dual, text, spec)

    async def _check(self, thread: CollectionThread, embedder: QueryEmbedder, how: str) -> None:
        if (thread.name, how, embedder.fingerprint) not in self._checked:
            await thread.run(lambda c: getattr(c, how)(embedder.encoder))
            self._checked.add((thread.name, how, embedder.fingerprint))

    # -- search ---------------------------------------------------------------------------

    async def visible(self, tenant: str, collection: str) -> CollectionThread:
        """The collection's thread, when it holds some of the tenant's items."""
        from ._collections import CollectionNotVisibleError

        thread = self.collections.get(collection)
        if not await thread.visible_to(tenant):
            raise CollectionNotVisibleError(collection)
        return thread

    async def search(
        self,
        tenant: str,
        collection: str,
        *,
        text: str | None = None,
        image: bytes | None = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        modality: str | None = None,
    ) -> Found:
        """The tenant's k best items for a text query, an image query, or both (their
        embeddings summed: the query means both)."""
        max_k = self.settings.search.max_k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
            raise InvalidInputError(f"k: expected a whole number from 1 to {max_k}, got {k!r}")
        if text is not None and not text.strip():
            raise InvalidInputError("query: the text is empty; give words to search for")
        if text is None and image is None:
            raise InvalidInputError("give a text `query`, an `image`, or both")
        if modality is not None and modality not in _MODALITIES:
            raise InvalidInputError(f"modality {modality!r}: expected one of image, page, text")
        if filters is not None and not isinstance(filters, dict):
            raise InvalidInputError("filters: expected an object of field: value")
        thread = await self.visible(tenant, collection)
        models = await self.models(thread)
        wanted = dict(filters or {})
        if modality is not None:
            wanted["modality"] = modality
        if models.spec.documents is not None and image is None:
            assert text is not None
            return await self._hybrid(thread, models, tenant, text, k, wanted)
        if models.dual is None:
            raise InvalidInputError(
                f"collection {collection!r} holds page text only: search it with a text query"
            )
        embedder = models.dual
        started = time.perf_counter()
        parts = []
        if text is not None:
            parts.append(await embedder.text(text))
        if image is not None:
            search = self.settings.search
            picture = await asyncio.to_thread(
                decode_query_image,
                image,
                max_bytes=search.max_query_image_bytes,
                max_pixels=search.max_query_image_pixels,
            )
            parts.append(await embedder.image(picture, image))
        vector = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)
        embedded = time.perf_counter()
        hits = await thread.run(lambda c: c.search(vector, tenant=tenant, k=k, filters=wanted))
        found = [Retrieved.of_hit(hit) for hit in hits]
        return Found(collection, found, embedded - started, time.perf_counter() - embedded)

    async def _hybrid(
        self,
        thread: CollectionThread,
        models: Models,
        tenant: str,
        text: str,
        k: int,
        filters: dict[str, Any],
    ) -> Found:
        """A document collection: page images, dense passages and BM25, fused into pages.
        The query is embedded here (cached, batched); the index is handed the vectors."""
        from turnout.retrieval.index import hybrid_search

        started = time.perf_counter()
        dual = text_model = None
        if models.dual is not None:
            dual = Embedded(models.dual.encoder, text, await models.dual.text(text))
        if models.text is not None:
            text_model = Embedded(models.text.encoder, text, await models.text.text(text))
        embedded = time.perf_counter()
        # A text-only collection's own encoder is its text encoder.
        encoder = dual if dual is not None else text_model
        pages = await thread.run(
            lambda c: hybrid_search(
                c, encoder, text_model, tenant=tenant, text=text, k=k, filters=filters or None
            )
        )
        found = [Retrieved.of_page(page) for page in pages]
        return Found(thread.name, found, embedded - started, time.perf_counter() - embedded)

    # -- items ----------------------------------------------------------------------------

    async def item(self, tenant: str, public: str) -> tuple[str, Item]:
        """(collection, item) for a public id, when the item is the tenant's."""
        from ._collections import CollectionNotVisibleError

        collection, item_id = parse_public_id(public)
        try:
            thread = self.collections.get(collection)
            item = await thread.run(lambda c: _stored_or_page(c, tenant, item_id))
        except (CollectionNotVisibleError, InvalidInputError):
            raise ItemNotFoundError(public) from None
        if item is None:
            raise ItemNotFoundError(public)
        return collection, item

    async def picture(self, item: Item, side: int) -> bytes:
        """The item's photo or page as JPEG, longest side at most `side`."""
        source = item.source
        return await asyncio.to_thread(
            self.renderer.jpeg, source.source, source.content_hash, source.page, side
        )

    def describe(self, collection: str, hit: Retrieved, text_chars: int = 500) -> dict[str, Any]:
        """A result as the API shows it: public id, provenance, score."""
        item = hit.item
        ident = public_id(collection, item.id)
        shown: dict[str, Any] = {
            "id": ident,
            "rank": hit.rank,
            "score": round(hit.score, 6),
            "modality": item.modality,
            "source": self.display_source(collection, item),
            "page": item.source.page,
            "region": list(hit.region) if hit.region else None,
            "text": hit.text[:text_chars] if hit.text and text_chars else None,
            "metadata": item.metadata,
            "thumbnail_url": f"/v1/items/{ident}/thumbnail",
        }
        if hit.scores is not None:
            shown["scores"] = hit.scores
            shown["passages"] = (
                [{**p, "text": (p["text"] or "")[:text_chars] or None} for p in hit.passages]
                if text_chars
                else []
            )
        return shown

    def display_source(self, collection: str, item: Item) -> str:
        """The source as its tenant knows it: an upload's file name, not the server path."""
        path = Path(item.source.source)
        try:
            return str(path.relative_to(uploads_dir(self.settings, collection, item.tenant)))
        except ValueError:
            return item.source.source

    # -- freshness, for the metrics and the dashboard (called off the event loop) ---------

    def freshness_rows(self) -> list[dict[str, Any]]:
        """Per collection: the age of its oldest change not yet indexed, and its SLO."""
        from turnout.retrieval.index import freshness, list_collections

        rows = []
        for name in list_collections(self.settings):
            known = self.collections.get(name).run_blocking(lambda c: freshness(c))
            age = known.oldest_pending_age_s or 0.0
            rows.append({"collection": name, "age_s": age, "slo_s": known.slo_s})
        return rows

    def freshness_ages(self) -> list[tuple[str, float]]:
        return [(row["collection"], row["age_s"]) for row in self.freshness_rows()]

    async def close(self) -> None:
        await self.collections.close()
        self.encoders.close()


def _stored_or_page(collection: Any, tenant: str, item_id: str) -> Item | None:
    """The tenant's item; or, for `SOURCE#pN`, page N of a document the tenant has items
    of (a document hit names its page even where only the page's passages are stored)."""
    from turnout.retrieval.index import Item, Provenance

    items = collection.get(tenant, [item_id])
    if items:
        return items[0]  # type: ignore[no-any-return]
    source, sep, page = item_id.rpartition("#p")
    if not sep or not page.isdigit():
        return None
    known = list(collection.manifest.items_of(tenant, source))
    some = collection.get(tenant, known[:1]) if known else []
    if not some:
        return None
    provenance = Provenance(source, some[0].source.content_hash, int(page))
    return Item(id=item_id, tenant=tenant, source=provenance, modality="page")


class PageQualityMetrics:
    """A Prometheus collector of page text quality per document collection (OCR pages
    below the confidence floor, pages without text), read from the manifests at scrape
    time; the index layer is imported only then."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from turnout.retrieval.index import PageQualityCollector, list_collections

        if list_collections(self.settings):
            yield from PageQualityCollector(self.settings).collect()
