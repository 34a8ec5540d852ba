"""Retrieval in the gateway: the rag pattern, visual search, uploads and thumbnails.

Built on `turnout.retrieval.index`; every operation is scoped to the caller's tenant.
"""

from ._collections import (
    CollectionNotVisibleError,
    Collections,
    ItemNotFoundError,
    parse_public_id,
    public_id,
)
from ._embedding import Encoders, QueryEmbedder
from ._media import SourceGoneError, decode_query_image
from ._rag import CitationCheck, Context, RagPath, cited, decide
from ._retrieval import Found, PageQualityMetrics, Retrieval, Retrieved, uploads_dir
from ._uploads import UploadReport, Uploads, safe_name

__all__ = [
    "CitationCheck",
    "CollectionNotVisibleError",
    "Collections",
    "Context",
    "Encoders",
    "Found",
    "ItemNotFoundError",
    "PageQualityMetrics",
    "QueryEmbedder",
    "RagPath",
    "Retrieval",
    "Retrieved",
    "SourceGoneError",
    "UploadReport",
    "Uploads",
    "cited",
    "decide",
    "decode_query_image",
    "parse_public_id",
    "public_id",
    "safe_name",
    "uploads_dir",
]
