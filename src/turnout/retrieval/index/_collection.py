"""A collection: items of many tenants in one backend, every read scoped to one tenant.

Writes go in batches that are all-or-nothing across a crash. A batch's new item versions
are new points (the point id includes the version), so:

1. the journal records the points the batch adds and the points it will remove;
2. the backend stores the new points beside the old ones;
3. one manifest transaction points the items at the new points and marks the batch done;
4. the old points are removed and the journal entry dropped.

Opening a collection finishes what a crash interrupted: a batch stopped before step 3 has
its new points removed (the collection is as it was before the batch); one stopped after
has its old points removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from turnout.core import InvalidInputError

from ._backend import Backend, Must
from ._errors import (
    CollectionMismatchError,
    InvalidFilterError,
)
from ._late import normalise, pool_tokens, pooled_vector, sketch_vectors
from ._manifest import Manifest, PageRecord, SourceRecord
from ._types import (
    FILTER_KEYS,
    CollectionSpec,
    DocumentOptions,
    Hit,
    Item,
    Point,
    point_id,
)

if TYPE_CHECKING:
    pass

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
_META_KEY = re.compile(r"^meta\.[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"collection name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise InvalidInputError(
            f"tenant {tenant!r}: use 1 to 128 letters, digits, '_', '.', '@', ':' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def check_filters(filters: dict[str, Any] | None) -> Must:
    """Validate a caller's payload filter: known keys, scalar or list-of-scalar values."""
    out: Must = {}
    for key, value in (filters or {}).items():
        if key == "tenant":
            raise InvalidFilterError(
                "filter on 'tenant': the tenant is given separately and every search is "
                "scoped to it; a filter cannot name another"
            )
        if key not in FILTER_KEYS and not _META_KEY.match(key):
            raise InvalidFilterError(
                f"filter key {key!r}: use one of {', '.join(FILTER_KEYS)} or meta.NAME"
            )
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidFilterError(f"filter {key!r}: values must be strings, numbers or booleans")
        out[key] = list(values) if isinstance(value, list) else value
    return out


class Collection:
    """The index interface: upsert, delete, search, count, size; the same on every backend."""

    def __init__(self, spec: CollectionSpec, folder: Path, backend: Backend) -> None:
        self.spec = spec
        self.folder = folder
        self.backend = backend
        self.manifest = Manifest(folder / "manifest.sqlite")
        self.recover()

    @property
    def name(self) -> str:
        return self.spec.name

    # -- encoder and vector checks --------------------------------------------------------

    def check_encoder(self, encoder: Any) -> None:
        """Refuse an encoder other than the one the collection was built with."""
        fingerprint = getattr(encoder, "fingerprint", None)
        if self.spec.encoder_fingerprint and fingerprint != self.spec.encoder_fingerprint:
            raise CollectionMismatchError(
                f"collection {self.name!r} was built with encoder {self.spec.encoder!r} "
                f"(fingerprint {self.spec.encoder_fingerprint}); "
                f"{getattr(encoder, 'name', encoder)!r} (fingerprint {fingerprint}) makes "
                "vectors it cannot compare; search with the collection's encoder, or index "
                "into a new collection"
            )
        dim = getattr(encoder, "dim", None)
        if dim is not None and dim != self.spec.dim:
            raise CollectionMismatchError(
                f"collection {self.name!r} holds {self.spec.dim}-dimensional vectors; encoder "
                f"{getattr(encoder, 'name', encoder)!r} makes {dim}-dimensional ones"
            )

    def documents(self) -> DocumentOptions:
        """The collection's document options; refuses a collection made without them."""
        if self.spec.documents is None:
            raise CollectionMismatchError(
                f"collection {self.name!r} has no page text or passages (it was created "
                "without a text encoder); create a document collection with "
                "`turnout index add --text-encoder minilm ...`"
            )
        return self.spec.documents

    def check_text_encoder(self, encoder: Any) -> None:
        """Refuse a text encoder other than the one the collection's passages were embedded by."""
        documents = self.documents()
        fingerprint = getattr(encoder, "fingerprint", None)
        if documents.text_fingerprint and fingerprint != documents.text_fingerprint:
            raise CollectionMismatchError(
                f"collection {self.name!r} embedded its passages with text encoder "
                f"{documents.text_encoder!r} (fingerprint {documents.text_fingerprint}); "
                f"{getattr(encoder, 'name', encoder)!r} (fingerprint {fingerprint}) makes "
                "vectors it cannot compare; search with the collection's text encoder"
            )
        dim = getattr(encoder, "dim", None)
        want = documents.text_dim or self.spec.dim
        if dim is not None and dim != want:
            raise CollectionMismatchError(
                f"collection {self.name!r} holds {want}-dimensional passage vectors; text "
                f"encoder {getattr(encoder, 'name', encoder)!r} makes {dim}-dimensional ones"
            )

    def _text_vector(self, vector: NDArray[np.floating], what: str) -> NDArray[np.float32]:
        documents = self.documents()
        v = np.asarray(vector, dtype=np.float32)
        if v.ndim != 1 or v.shape[0] != documents.text_dim:
            raise CollectionMismatchError(
                f"collection {self.name!r} holds {documents.text_dim}-dimensional text "
                f"vectors; {what} has shape {tuple(v.shape)}"
            )
        if not np.all(np.isfinite(v)):
            raise InvalidInputError(f"{what}: text vector has NaN or infinite values")
        return normalise(v)

    def _vector(self, vector: NDArray[np.floating], what: str) -> NDArray[np.float32]:
        v = np.asarray(vector, dtype=np.float32)
        if v.ndim != 1 or v.shape[0] != self.spec.dim:
            raise CollectionMismatchError(
                f"collection {self.name!r} holds {self.spec.dim}-dimensional vectors; {what} "
                f"has shape {tuple(v.shape)}"
            )
        if not np.all(np.isfinite(v)):
            raise InvalidInputError(f"{what}: vector has NaN or infinite values")
        return normalise(v) if self.spec.distance == "cosine" else v

    def _multi(
        self, vectors: NDArray[np.floating], what: str, *, pool: bool
    ) -> NDArray[np.float32]:
        mv = self.spec.multivector
        assert mv is not None
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != mv.dim or len(v) == 0:
            raise CollectionMismatchError(
                f"collection {self.name!r} stores multivectors of dimension {mv.dim}; {what} "
                f"has shape {tuple(v.shape)}"
            )
        return pool_tokens(v, mv.pool_factor) if pool else normalise(v)

    # -- writes ----------------------------------------------------------------------------

    def upsert(
        self,
        items: Sequence[Item],
        vectors: NDArray[np.floating] | None = None,
        *,
        multivectors: Sequence[NDArray[np.floating]] | None = None,
        text_vectors: Sequence[NDArray[np.floating] | None] | None = None,
    ) -> None:
        """Add or replace items (grouped by tenant); all-or-nothing per tenant group."""
        by_tenant: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            by_tenant.setdefault(check_tenant(item.tenant), []).append(i)
        for tenant, rows in by_tenant.items():
            self.write_batch(
                tenant,
                [items[i] for i in rows],
                None if vectors is None else np.asarray(vectors)[rows],
                multivectors=None if multivectors is None else [multivectors[i] for i in rows],
                text_vectors=None if text_vectors is None else [text_vectors[i] for i in rows],
            )

    def delete(self, tenant: str, item_ids: Sequence[str]) -> int:
        """Remove a tenant's items by id; ids of other tenants' items match nothing."""
        check_tenant(tenant)
        known = self.manifest.pids(tenant, list(item_ids))
        self.write_batch(tenant, [], None, drop=list(known))
        return len(known)

    def write_batch(
        self,
        tenant: str,
        items: Sequence[Item],
        vectors: NDArray[np.floating] | None,
        *,
        multivectors: Sequence[NDArray[np.floating]] | None = None,
        text_vectors: Sequence[NDArray[np.floating] | None] | None = None,
        drop: Sequence[str] = (),
        sources: Sequence[SourceRecord] = (),
        forget_sources: Sequence[str] = (),
        pages: Sequence[PageRecord] = (),
    ) -> None:
        """Write one all-or-nothing batch for one tenant (see the module docstring)."""
        check_tenant(tenant)
        points = self._points(tenant, items, vectors, multivectors, text_vectors)
        put = [(item.id, p.id, item.source.source) for item, p in zip(items, points, strict=True)]
        old = self.manifest.pids(tenant, [i.id for i in items] + list(drop))
        added = [p.id for p in points]
        removed = sorted(set(old.values()) - set(added))
        batch = self.manifest.begin(added, removed)
        try:
            self.backend.upsert(points)
            self.backend.flush()
            self.manifest.commit(
                batch,
                tenant,
                put,
                [d for d in drop if d not in {i.id for i in items}],
                sources,
                forget_sources,
                pages,
            )
        except BaseException:
            self._roll_back(batch, added)
            raise
        self.backend.delete(removed)
        self.backend.flush()
        self.manifest.finish(batch)

    def _points(
        self,
        tenant: str,
        items: Sequence[Item],
        vectors: NDArray[np.floating] | None,
        multivectors: Sequence[NDArray[np.floating]] | None,
        text_vectors: Sequence[NDArray[np.floating] | None] | None = None,
    ) -> list[Point]:
        if not items:
            return []
        documents = self.spec.documents
        separate_text = documents is not None and documents.text_dim is not None
        if text_vectors is not None and (not separate_text or len(text_vectors) != len(items)):
            raise CollectionMismatchError(
                f"collection {self.name!r}: "
                + (
                    f"{len(items)} items but {len(text_vectors)} text vectors"
                    if separate_text
                    else "it keeps no separate text vectors (its encoder embeds the passages)"
                )
            )
        mv = self.spec.multivector
        if mv is not None and (multivectors is None or len(multivectors) != len(items)):
            raise CollectionMismatchError(
                f"collection {self.name!r} stores multivectors: give one per item"
            )
        if mv is None and multivectors is not None:
            raise CollectionMismatchError(
                f"collection {self.name!r} was created without multivector storage"
            )
        if vectors is None and mv is None:
            raise InvalidInputError("upsert: give a vector per item")
        if vectors is not None and len(vectors) != len(items):
            raise InvalidInputError(f"upsert: {len(items)} items but {len(vectors)} vectors")
        points = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.tenant != tenant:
                raise InvalidInputError(f"item {item.id!r} belongs to tenant {item.tenant!r}")
            if not item.id:
                raise InvalidInputError("an item needs a non-empty id")
            if item.id in seen:
                raise InvalidInputError(f"item id {item.id!r} appears twice in one batch")
            seen.add(item.id)
            multi = sketch = None
            if mv is not None:
                assert multivectors is not None
                multi = self._multi(multivectors[i], f"item {item.id!r}", pool=True)
                if mv.sketch > 0:
                    # From the item's own vectors, not the pooled ones pool_factor stores.
                    tokens = self._multi(multivectors[i], f"item {item.id!r}", pool=False)
                    sketch = sketch_vectors(tokens, mv.sketch)
            if vectors is not None:
                vector = self._vector(vectors[i], f"item {item.id!r}")
            else:
                assert multivectors is not None
                vector = pooled_vector(np.asarray(multivectors[i], dtype=np.float32))
                vector = self._vector(vector, f"item {item.id!r}")
            text_vector = None
            if text_vectors is not None and text_vectors[i] is not None:
                given = text_vectors[i]
                assert given is not None
                text_vector = self._text_vector(given, f"item {item.id!r}")
            # BM25 indexes every text item of a document collection (passages, captions).
            lexical = (
                item.text
                if documents is not None
                and documents.lexical
                and item.modality == "text"
                and item.text
                else None
            )
            data = (
                vector.tobytes()
                + (multi.tobytes() if multi is not None else b"")
                + (text_vector.tobytes() if text_vector is not None else b"")
            )
            points.append(
                Point(
                    point_id(self.name, item, data),
                    vector,
                    item.payload(),
                    multi,
                    text_vector,
                    lexical,
                    sketch,
                )
            )
        return points

    def _roll_back(self, batch: int, added: Sequence[str]) -> None:
        # Points the manifest already names (an unchanged re-upsert) stay.
        keep = self.manifest.known_pids(added)
        self.backend.delete([pid for pid in added if pid not in keep])
        self.backend.flush()
        self.manifest.finish(batch)

    def recover(self) -> None:
        """Finish or undo batches a crash interrupted (see the module docstring)."""
        for batch, state, added, removed in self.manifest.open_batches():
            if state == "prepared":
                self._roll_back(batch, added)
            else:
                keep = self.manifest.known_pids(removed)
                self.backend.delete([pid for pid in removed if pid not in keep])
                self.backend.flush()
                self.manifest.finish(batch)

    # -- reads -----------------------------------------------------------------------------

    def search(
        self,
        vector: NDArray[np.floating] | None,
        *,
        tenant: str,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        multivector: NDArray[np.floating] | None = None,
        candidates: int = 100,
    ) -> list[Hit]:
        """The tenant's k nearest items; with `multivector`, MaxSim over first-stage candidates."""
        check_tenant(tenant)
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        must: Must = {**check_filters(filters), "tenant": tenant}
        multi = None
        if multivector is not None:
            if self.spec.multivector is None:
                raise CollectionMismatchError(
                    f"collection {self.name!r} has no multivectors to search by MaxSim"
                )
            multi = self._multi(multivector, "the query", pool=False)
            if vector is None:
                vector = pooled_vector(multi)
        if vector is None:
            raise InvalidInputError("search: give a query vector or multivector")
        query = self._vector(vector, "the query")
        found = self.backend.search(query, must, k, multivector=multi, candidates=candidates)
        hits: list[Hit] = []
        for _pid, score, payload in found:
            # Belt and braces: a point whose payload names another tenant is never returned.
            if payload.get("tenant") != tenant:
                continue
            hits.append(Hit(Item.from_payload(payload), score, len(hits) + 1))
        return hits

    def _hits(self, found: list[tuple[str, float, dict[str, Any]]], tenant: str) -> list[Hit]:
        hits: list[Hit] = []
        for _pid, score, payload in found:
            if payload.get("tenant") != tenant:  # belt and braces, as in `search`
                continue
            hits.append(Hit(Item.from_payload(payload), score, len(hits) + 1))
        return hits

    def search_text(
        self,
        vector: NDArray[np.floating],
        *,
        tenant: str,
        k: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The tenant's k passages nearest a text encoder's query vector (dense text)."""
        check_tenant(tenant)
        documents = self.documents()
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        must: Must = {**check_filters(filters), "tenant": tenant, "modality": "text"}
        if documents.text_dim is None:  # the collection's own encoder embeds the passages
            return self._hits(
                self.backend.search(self._vector(vector, "the query"), must, k), tenant
            )
        query = self._text_vector(vector, "the query")
        return self._hits(self.backend.search(query, must, k, using="text"), tenant)

    def search_lexical(
        self,
        query: str,
        *,
        tenant: str,
        k: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The tenant's k passages that BM25 ranks best for `query`."""
        check_tenant(tenant)
        documents = self.documents()
        if not documents.lexical:
            raise CollectionMismatchError(
                f"collection {self.name!r} was created without BM25 (--no-bm25)"
            )
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        if not query.strip():
            raise InvalidInputError("the query text is empty")
        must: Must = {**check_filters(filters), "tenant": tenant, "modality": "text"}
        return self._hits(self.backend.search_lexical(query, must, k), tenant)

    def get(self, tenant: str, item_ids: Sequence[str]) -> list[Item]:
        check_tenant(tenant)
        pids = self.manifest.pids(tenant, list(item_ids))
        payloads = self.backend.retrieve(list(pids.values()))
        return [Item.from_payload(p) for p in payloads.values() if p.get("tenant") == tenant]

    def count(self, tenant: str | None = None, filters: dict[str, Any] | None = None) -> int:
        must: Must = check_filters(filters)
        if tenant is not None:
            must["tenant"] = check_tenant(tenant)
        return self.backend.count(must)

    def size_bytes(self) -> int:
        return self.backend.size_bytes()

    def optimize(self) -> None:
        """Build the backend's search structures now. Qdrant Edge has no background
        optimizer: until this runs, its new segments are searched without an HNSW graph
        (exactly, and ever slower as they grow)."""
        optimize = getattr(self.backend, "optimize", None)
        if optimize is not None:
            optimize()

    def close(self) -> None:
        self.backend.close()
        self.manifest.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- creating and opening ------------------------------------------------------------------
