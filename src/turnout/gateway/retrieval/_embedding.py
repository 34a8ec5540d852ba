"""Query embeddings: encoders kept loaded, answers cached by content, concurrent queries
batched into one forward pass.

While one batch runs on the encoder's thread, new queries wait in line and go together
in the next, so a burst of concurrent searches costs a few forward passes rather than one
each; a lone query goes at once, with no timer to wait on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from turnout.core import ConfigError, Settings

if TYPE_CHECKING:
    from PIL.Image import Image

Vector = NDArray[np.float32]


class QueryEmbedder:
    """One encoder, loaded once, with its own thread, cache and batches."""

    def __init__(self, encoder: Any, cache_entries: int) -> None:
        self.encoder = encoder
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="turnout-embed")
        self._cache: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._cache_entries = cache_entries
        self._waiting: list[tuple[str, str, Any, asyncio.Future[Vector]]] = []
        self._draining: asyncio.Task[None] | None = None
        self.batches = 0  # forward passes run, for tests and the benchmark

    @property
    def fingerprint(self) -> str:
        return str(getattr(self.encoder, "fingerprint", ""))

    async def text(self, text: str) -> Vector:
        return await self._embed("text", hashlib.sha256(text.encode()).hexdigest(), text)

    async def image(self, image: Image, content: bytes) -> Vector:
        return await self._embed("image", hashlib.sha256(content).hexdigest(), image)

    async def _embed(self, kind: str, key: str, payload: Any) -> Vector:
        cached = self._cache.get((kind, key))
        if cached is not None:
            self._cache.move_to_end((kind, key))
            return cached
        future: asyncio.Future[Vector] = asyncio.get_running_loop().create_future()
        self._waiting.append((kind, key, payload, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            for kind in ("text", "image"):
                group = [w for w in batch if w[0] == kind]
                if not group:
                    continue
                # The same query asked twice at once is embedded once.
                unique: dict[str, Any] = {key: payload for _, key, payload, _ in group}
                try:
                    vectors = await loop.run_in_executor(
                        self._pool, self._forward, kind, list(unique.values())
                    )
                except Exception as exc:  # every query in the batch learns why
                    for *_, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                found = dict(zip(unique, vectors, strict=True))
                for _, key, _, future in group:
                    self._remember((kind, key), found[key])
                    if not future.done():
                        future.set_result(found[key])

    def _forward(self, kind: str, payloads: Sequence[Any]) -> list[Vector]:
        if kind == "text":
            out = self.encoder.embed_texts(list(payloads))
        else:
            out = self.encoder.embed_images(list(payloads))
        return [np.asarray(row, dtype=np.float32) for row in out]

    def _remember(self, key: tuple[str, str], vector: Vector) -> None:
        if self._cache_entries <= 0:
            return
        self._cache[key] = vector
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Encoders:
    """Encoders by kind and spec, each loaded on first use and kept: `dual` (CLIP, SigLIP:
    text and images in one space) and `text` (sentence-transformers, for passages)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: dict[tuple[str, str], QueryEmbedder] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def spec_for(self, collection: str, recorded: str | None) -> str:
        spec = self.settings.search.encoders.get(collection) or recorded
        if not spec:
            raise ConfigError(
                f"collection {collection!r} records no encoder; name one in "
                f"search.encoders.{collection} (TURNOUT_SEARCH__ENCODERS)"
            )
        return spec

    async def get(self, spec: str, kind: str = "dual") -> QueryEmbedder:
        key = (kind, spec)
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._loaded:
                threads = self.settings.search.threads
                encoder = await asyncio.to_thread(_load, spec, kind, threads)
                self._loaded[key] = QueryEmbedder(encoder, self.settings.search.cache_entries)
        return self._loaded[key]

    def close(self) -> None:
        for embedder in self._loaded.values():
            embedder.close()


def _load(spec: str, kind: str, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)  # process-wide: every query encoder shares it
    if kind == "text":
        from turnout.retrieval import load_text_encoder

        return load_text_encoder(spec)
    from turnout.retrieval import EncoderOptions, load_encoder

    # One request's worth of images at a time; decoding happens on the caller's side.
    return load_encoder(spec, EncoderOptions(batch_size=32, workers=0, threads=threads))


class Embedded:
    """An encoder whose answer for one query is already known (embedded, cached and
    batched on the event loop's side): the index's own search functions, which embed the
    query themselves, get this in its place and are handed the vector."""

    def __init__(self, encoder: Any, text: str, vector: Vector) -> None:
        self._encoder = encoder
        self._text = text
        self._vector = vector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)  # name, dim, fingerprint: the real encoder's

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if list(texts) != [self._text]:
            raise RuntimeError("Embedded answers only the query it was made for")
        return self._vector[None, :]
