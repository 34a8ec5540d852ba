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

A document collection (`documents=DocumentOptions(text_encoder="minilm")`) also reads each
PDF page's text (text layer, or OCR for scans), cuts it into passages with page and box,
and answers `hybrid_search`: page images, dense text and BM25, fused into ranked pages.

    from turnout.retrieval import load_text_encoder
    from turnout.retrieval.index import DocumentOptions, hybrid_search

    minilm = load_text_encoder("minilm")
    manuals = create_collection(settings, "manuals", minilm.dim, encoder=minilm,
                                documents=DocumentOptions("minilm", minilm.fingerprint,
                                                          images=False))
    index_sources(manuals, minilm, ["~/manuals"], tenant="acme")
    for page in hybrid_search(manuals, minilm, tenant="acme", text="pump seal", k=5):
        print(page.rank, page.item.source.source, page.item.source.page, page.scores)

Every read is scoped to one tenant. Collections record their dimension, distance and
encoder, and refuse vectors or encoders that do not fit. qdrant-edge-py, qdrant-client,
faiss and pypdfium2 are imported inside the functions that use them.
"""

from turnout.core._index_settings import FaissSettings, HnswSettings, IndexSettings

from ._backend import Backend
from ._catalog import (
    collections_root,
    create_collection,
    list_collections,
    open_collection,
    read_spec,
    set_freshness_slo,
)
from ._collection import Collection
from ._corpus import SourceFile, decode_image, scan_root
from ._documents import OCR_MAX_PIXELS
from ._errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    IndexBackendError,
    IndexStorageError,
    InvalidFilterError,
    UnreadableDocumentError,
    UnusableSourceError,
)
from ._fusion import PageHit, PassageMatch, check_fusion, fuse_pages
from ._hybrid import choose_retrievers, hybrid_search, retrieve_each
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
from ._manifest import PageCounts, PageRecord
from ._page_quality import PageQuality, PageQualityCollector, page_quality
from ._query import search
from ._types import (
    FUSIONS,
    RETRIEVERS,
    CollectionSpec,
    DocumentOptions,
    Hit,
    Item,
    MultivectorOptions,
    Point,
    Provenance,
)

__all__ = [
    "FUSIONS",
    "OCR_MAX_PIXELS",
    "RETRIEVERS",
    "Backend",
    "Collection",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "CollectionSpec",
    "DocumentOptions",
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
    "PageCounts",
    "PageHit",
    "PageQuality",
    "PageQualityCollector",
    "PageRecord",
    "PassageMatch",
    "Plan",
    "Point",
    "Provenance",
    "SourceFile",
    "UnreadableDocumentError",
    "UnusableSourceError",
    "check_fusion",
    "choose_retrievers",
    "collections_root",
    "create_collection",
    "decode_image",
    "decode_multivector",
    "encode_multivector",
    "freshness",
    "fuse_pages",
    "hybrid_search",
    "index_sources",
    "list_collections",
    "maxsim",
    "open_collection",
    "page_quality",
    "parse_duration",
    "plan",
    "pool_tokens",
    "pooled_vector",
    "read_spec",
    "refresh",
    "retrieve_each",
    "scan_root",
    "search",
    "set_freshness_slo",
]
