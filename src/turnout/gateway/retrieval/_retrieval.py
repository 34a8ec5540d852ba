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
from ._embedding import Encoders, QueryEmbedder
from ._media import Renderer, decode_query_image

if TYPE_CHECKING:
    from turnout.retrieval.index import Hit, Item

_MODALITIES = ("image", "page", "text")


@dataclass(frozen=True)
class Found:
    """A search's hits and where its time went."""

    collection: str
    hits: list[Hit]
    embed_s: float
    search_s: float


def uploads_dir(settings: Settings, collection: str, tenant: str) -> Path:
    """Where a tenant's uploads to a collection are kept (and indexed from)."""
    return settings.home_dir / "uploads" / collection / tenant


class Retrieval:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collections = Collections(settings)
        self.encoders = Encoders(settings)
        self.renderer = Renderer()
        self._checked: set[tuple[str, str]] = set()  # (collection, encoder) pairs that fit

    # -- encoders -------------------------------------------------------------------------

    async def embedder(self, thread: CollectionThread) -> QueryEmbedder:
        """The collection's encoder, loaded once and checked against what it recorded."""
        spec = await thread.spec()
        if spec is None:
            return await self.encoders.get(self.encoders.spec_for(thread.name, None))
        embedder = await self.encoders.get(self.encoders.spec_for(thread.name, spec.encoder))
        if (thread.name, embedder.fingerprint) not in self._checked:
            await thread.run(lambda c: c.check_encoder(embedder.encoder))
            self._checked.add((thread.name, embedder.fingerprint))
        return embedder

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
        embedder = await self.embedder(thread)
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
        wanted = dict(filters or {})
        if modality is not None:
            wanted["modality"] = modality
        hits = await thread.run(lambda c: c.search(vector, tenant=tenant, k=k, filters=wanted))
        return Found(collection, hits, embedded - started, time.perf_counter() - embedded)

    # -- items ----------------------------------------------------------------------------

    async def item(self, tenant: str, public: str) -> tuple[str, Item]:
        """(collection, item) for a public id, when the item is the tenant's."""
        from ._collections import CollectionNotVisibleError

        collection, item_id = parse_public_id(public)
        try:
            thread = self.collections.get(collection)
            items = await thread.run(lambda c: c.get(tenant, [item_id]))
        except (CollectionNotVisibleError, InvalidInputError):
            raise ItemNotFoundError(public) from None
        if not items:
            raise ItemNotFoundError(public)
        return collection, items[0]

    async def picture(self, item: Item, side: int) -> bytes:
        """The item's photo or page as JPEG, longest side at most `side`."""
        source = item.source
        return await asyncio.to_thread(
            self.renderer.jpeg, source.source, source.content_hash, source.page, side
        )

    def describe(self, collection: str, hit: Hit, text_chars: int = 500) -> dict[str, Any]:
        """A hit as the API shows it: public id, provenance, score."""
        item = hit.item
        ident = public_id(collection, item.id)
        text = item.text
        return {
            "id": ident,
            "rank": hit.rank,
            "score": round(float(hit.score), 6),
            "modality": item.modality,
            "source": self.display_source(collection, item),
            "page": item.source.page,
            "region": list(item.source.box) if item.source.box else None,
            "text": text[:text_chars] if text and text_chars else None,
            "metadata": item.metadata,
            "thumbnail_url": f"/v1/items/{ident}/thumbnail",
        }

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
