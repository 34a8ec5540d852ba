"""Settings of retrieval in the gateway: the search endpoints and a route's retrieval step.

Pure data, validated on load. Which collection a route searches, and with which encoder,
is checked when the gateway first uses it, with errors naming the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Words that make a message "about the documents": the `auto` retrieval rule retrieves for
# these even when the message carries an image of its own.
DOCUMENT_WORDS = (
    "document",
    "documents",
    "doc",
    "docs",
    "pdf",
    "page",
    "pages",
    "manual",
    "report",
    "file",
    "files",
    "section",
    "according",
    "cite",
    "source",
    "sources",
    "catalog",
    "uploaded",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrievalSettings(_Strict):
    """A `rag` route's retrieval step: what to search and what to attach to the call."""

    collection: str = Field(description="The collection searched (the caller's items in it).")
    k: int = Field(default=4, ge=1, le=20, description="Items attached to the provider call.")
    when: Literal["always", "auto"] = Field(
        default="auto",
        description="always: retrieve for every request; auto: retrieve when the tenant has "
        "items in the collection and the message refers to documents or carries no image of "
        "its own (otherwise the request goes down the direct path).",
    )
    document_words: tuple[str, ...] = Field(
        default=DOCUMENT_WORDS,
        description="Words that make a message refer to documents (auto rule; whole words, "
        "any case).",
    )
    attach: Literal["images", "text", "both"] = Field(
        default="both",
        description="What of each item goes to the model: its image (photo or rendered page), "
        "its text (caption or page text), or both.",
    )
    detail: Literal["low", "high", "auto"] = Field(
        default="low",
        description="Detail of attached images; counted against the image-token cap and the "
        "budget like any image.",
    )
    image_side: int = Field(
        default=1024, ge=64, le=4096, description="Longest side, in pixels, of attached images."
    )
    max_text_chars: int = Field(
        default=2000, ge=0, description="Text of each item attached, at most this many characters."
    )
    min_score: float | None = Field(
        default=None,
        description="Items scoring below this are not attached (default: none). The score is "
        "the encoder's cosine similarity, or for a document collection the fused score "
        "(RRF: about 1/60 for a page first in one retriever).",
    )
    require_citation: bool = Field(
        default=True,
        description="An answer that cites no supplied item fails its check (and may escalate).",
    )


class SearchSettings(_Strict):
    """The gateway's retrieval endpoints (/v1/search, uploads, thumbnails) and encoders."""

    encoder: str | None = Field(
        default=None,
        description="Encoder (hub id, hf:id@rev or local folder) of collections created by "
        "uploads; uploads to a new collection are refused without it or `text_encoder`.",
    )
    text_encoder: str | None = Field(
        default=None,
        description="Text encoder (`minilm`, a local folder, hf:id@rev) that makes collections "
        "created by uploads document collections: page text (or OCR) cut into passages, "
        "searched by dense text and BM25 beside the page images, and fused. Without "
        "`encoder`, such a collection holds page text only.",
    )
    encoders: dict[str, str] = Field(
        default_factory=dict,
        description="Encoder per collection, where it is not the one the collection recorded "
        "(the model moved); the fingerprint is still checked.",
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="torch threads for query embedding (process-wide). One keeps latency "
        "steady beside the event loop and other processes (on 2 shared cores it was 4x "
        "faster at p50 than two); raise it on a host with cores to spare.",
    )
    max_k: int = Field(default=100, ge=1, le=1000, description="Largest k a search may ask.")
    cache_entries: int = Field(
        default=10_000, ge=0, description="Query embeddings kept, keyed by content hash."
    )
    max_query_image_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="Largest query image accepted (413 above)."
    )
    max_query_image_pixels: int = Field(
        default=40_000_000, gt=0, description="Query images claiming more pixels are refused."
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest upload per request (413 above)."
    )
    thumbnail_side: int = Field(
        default=256, ge=16, le=1024, description="Longest side of item thumbnails, in pixels."
    )
