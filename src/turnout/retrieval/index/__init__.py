"""Vector indexes: one interface over Qdrant Edge (embedded), a Qdrant server and FAISS.

    from turnout.core import load_settings
    from turnout.retrieval import load_encoder
    from turnout.retrieval.index import create_collection, index_sources, search

    settings = load_settings()
    encoder = load_encoder("openai/clip-vit-base-patch32")
    photos = create_collection(settings, "photos", encoder.dim, encoder=encoder,
                               freshness_slo_s=3600)
    index_sources(photos, encoder, ["~/pictures"], tenant="acme")
    for hit in search(photos, encoder, tenant="acme", text="a red bicycle", k=5):
        print(hit.rank, hit.score, hit.item.source.source, hit.item.source.page)

Every read is scoped to one tenant. Collections record their dimension, distance and
encoder, and refuse vectors or encoders that do not fit. qdrant-edge-py, qdrant-client,
faiss and pypdfium2 are imported inside the functions that use them.
"""

from turnout.core._index_settings import FaissSettings, HnswSettings, IndexSettings

from ._backend import Backend
from ._collection import (
    Collection,
    collections_root,
    create_collection,
    list_collections,
    open_collection,
    read_spec,
    set_freshness_slo,
)
from ._corpus import SourceFile, decode_image, scan_root
from ._errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    IndexBackendError,
    IndexStorageError,
    InvalidFilterError,
    UnreadableDocumentError,
    UnusableSourceError,
)
from ._ingest import (
    Freshness,
    IngestReport,
    Plan,
    freshness,
    index_sources,
    parse_duration,
    plan,
    refresh,
)
from ._late import decode_multivector, encode_multivector, maxsim, pool_tokens, pooled_vector
from ._query import search
from ._types import CollectionSpec, Hit, Item, MultivectorOptions, Point, Provenance

__all__ = [
    "Backend",
    "Collection",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "CollectionSpec",
    "FaissSettings",
    "Freshness",
    "Hit",
    "HnswSettings",
    "IndexBackendError",
    "IndexSettings",
    "IndexStorageError",
    "IngestReport",
    "InvalidFilterError",
    "Item",
    "MultivectorOptions",
    "Plan",
    "Point",
    "Provenance",
    "SourceFile",
    "UnreadableDocumentError",
    "UnusableSourceError",
    "collections_root",
    "create_collection",
    "decode_image",
    "decode_multivector",
    "encode_multivector",
    "freshness",
    "index_sources",
    "list_collections",
    "maxsim",
    "open_collection",
    "parse_duration",
    "plan",
    "pool_tokens",
    "pooled_vector",
    "read_spec",
    "refresh",
    "scan_root",
    "search",
    "set_freshness_slo",
]
