"""What an index holds: items with provenance and a tenant, and the record of a collection."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Modality = Literal["image", "page", "text"]
Distance = Literal["cosine", "dot", "euclid"]
Quantization = Literal["none", "scalar", "binary"]
# A dense vector's codes: scalar is int8, turbo4/turbo2 TurboQuant at 4 and 2 bits a value.
DenseQuantization = Literal["none", "scalar", "turbo4", "turbo2", "binary"]
DENSE_QUANTIZATIONS: tuple[DenseQuantization, ...] = (
    "none",
    "scalar",
    "turbo4",
    "turbo2",
    "binary",
)
Retriever = Literal["image", "text", "bm25"]
FusionMethod = Literal["rrf", "weighted"]

MODALITIES: tuple[Modality, ...] = ("image", "page", "text")
RETRIEVERS: tuple[Retriever, ...] = ("image", "text", "bm25")
FUSIONS: tuple[FusionMethod, ...] = ("rrf", "weighted")
# Payload keys a search filter may name (besides `meta.KEY` for free metadata).
FILTER_KEYS = ("modality", "source", "page", "content_hash", "item_id")

_POINT_NAMESPACE = uuid.UUID("5a1c3c0e-7a2f-4f7e-9a54-2f6f1f0b9e11")


@dataclass(frozen=True)
class Provenance:
    """Where an item came from: a file path or URL, its content hash, page and region."""

    source: str
    content_hash: str
    page: int | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Item:
    """One searchable thing, owned by one tenant.

    `id` is stable across refreshes (for files: the resolved path, with `#p3` for page 3 of a
    PDF and `#text` for the text of an image's caption or a page's text layer).
    """

    id: str
    tenant: str
    source: Provenance
    modality: Modality
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "item_id": self.id,
            "source": self.source.source,
            "content_hash": self.source.content_hash,
            "page": self.source.page,
            "box": list(self.source.box) if self.source.box else None,
            "modality": self.modality,
            "text": self.text,
            "meta": self.metadata,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Item:
        box = payload.get("box")
        return cls(
            id=str(payload["item_id"]),
            tenant=str(payload["tenant"]),
            source=Provenance(
                source=str(payload["source"]),
                content_hash=str(payload["content_hash"]),
                page=payload.get("page"),
                box=(box[0], box[1], box[2], box[3]) if box else None,
            ),
            modality=payload["modality"],
            text=payload.get("text"),
            metadata=dict(payload.get("meta") or {}),
        )

    @property
    def version(self) -> str:
        """Changes when anything stored about the item changes (content, text, metadata)."""
        import hashlib
        import json

        text = json.dumps(self.payload(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def point_id(collection: str, item: Item, vectors: bytes = b"") -> str:
    """The backend id of one version of an item (payload and vectors): a new version is a new point.

    So a batch can be written beside what it replaces and the old points removed only once
    the manifest says the batch is done (see `_collection.Collection.write_batch`).
    """
    import hashlib

    digest = hashlib.sha256(vectors).hexdigest()[:16]
    key = "\x00".join((collection, item.tenant, item.id, item.version, digest))
    return str(uuid.uuid5(_POINT_NAMESPACE, key))


@dataclass(frozen=True)
class MultivectorOptions:
    """Late-interaction storage: one vector per token or patch, searched by MaxSim.

    `pool_factor` > 1 clusters each item's vectors into about n / pool_factor centroids
    before storing them; `quantization` stores them as int8 (scalar) or one bit per
    dimension (binary) where the backend stores the codes itself (FAISS), and turns on the
    matching Qdrant quantization on Qdrant backends.

    `sketch` > 0: each item also keeps its vectors clustered into at most `sketch` centroids,
    and the first stage ranks items by MaxSim over those (a few vectors per item) instead
    of by one mean-pooled vector, which loses the items that match only part of a query.
    0 is the first stage of collections made before sketches (the mean-pooled vector).
    """

    dim: int
    quantization: Quantization = "none"
    pool_factor: int = 1
    sketch: int = 8


@dataclass(frozen=True)
class DocumentOptions:
    """A document collection: page text (text layer or OCR) cut into passages, searched by
    dense text and BM25 beside the page images, and fused.

    `text_encoder` is the spec the text encoder loads from (`minilm`, a folder, a hub id).
    `text_dim` is None when the collection's own encoder is that text encoder (a text-only
    collection, `images` False); otherwise passages also get a `text` vector of that size
    beside the dual encoder's. `fusion`, `weights` and `rrf_k` are the defaults a query
    may override.
    """

    text_encoder: str
    text_fingerprint: str | None = None
    text_dim: int | None = None
    images: bool = True
    lexical: bool = True
    ocr: bool = True
    ocr_images: bool = False
    min_ocr_confidence: float = 60.0
    passage_words: int = 80
    passage_overlap: int = 20
    fusion: FusionMethod = "rrf"
    weights: dict[str, float] | None = None
    rrf_k: int = 60

    @property
    def retrievers(self) -> tuple[Retriever, ...]:
        """The retrievers this collection can run, in a fixed order."""
        out: list[Retriever] = ["image"] if self.images else []
        out.append("text")
        if self.lexical:
            out.append("bm25")
        return tuple(out)


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection was created with; recorded beside it and checked on every use."""

    name: str
    dim: int
    distance: Distance = "cosine"
    encoder: str | None = None
    encoder_fingerprint: str | None = None
    multivector: MultivectorOptions | None = None
    freshness_slo_s: float | None = None
    backend: str = "edge"
    created_at: str = ""
    documents: DocumentOptions | None = None
    # Recorded by collections made before it existed as absent: no codes.
    quantization: DenseQuantization = "none"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CollectionSpec:
        multi = data.get("multivector")
        documents = data.get("documents")
        return cls(
            **{k: v for k, v in data.items() if k not in ("multivector", "documents")},
            # A collection recorded before sketches existed has none (sketch 0).
            multivector=MultivectorOptions(**{"sketch": 0, **multi}) if multi else None,
            documents=DocumentOptions(**documents) if documents else None,
        )


@dataclass(frozen=True)
class Point:
    """What a backend stores: an id, the single vector, an optional multivector, the payload.

    In a document collection a passage also has `text_vector` (the text encoder's, where it
    is not the collection's own encoder) and `lexical`, the text BM25 indexes. A
    late-interaction point with a sketch has `sketch`, the first stage's few vectors.
    """

    id: str
    vector: NDArray[np.float32]
    payload: dict[str, Any]
    multivector: NDArray[np.float32] | None = None
    text_vector: NDArray[np.float32] | None = None
    lexical: str | None = None
    sketch: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Hit:
    """One search result: the item, its score (higher is closer) and its rank from 1."""

    item: Item
    score: float
    rank: int

    def to_json(self) -> dict[str, Any]:
        payload = self.item.payload()
        payload.pop("tenant")
        return {"rank": self.rank, "score": round(self.score, 6), **payload}
