"""Settings of the vector indexes: which backend, where it lives, and how it searches.

Pure data, validated on load. Per-collection choices (dimension, encoder, freshness SLO,
late-interaction storage, dense codes) are recorded with each collection when it is
created, not here; `quantization` here is only the default for new collections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DenseQuantization = Literal["none", "scalar", "turbo4", "turbo2", "binary"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaissSettings(_Strict):
    kind: Literal["flat", "hnsw", "ivfpq"] = Field(
        default="flat", description="flat (exact), hnsw or ivfpq (trained once it has data)."
    )
    hnsw_m: int = Field(default=32, ge=4, le=256, description="HNSW: links per node.")
    ef_construction: int = Field(default=200, ge=8, description="HNSW: build-time beam width.")
    ef_search: int = Field(default=128, ge=8, description="HNSW: query-time beam width.")
    nlist: int = Field(default=1024, ge=1, description="IVF-PQ: coarse cells.")
    nprobe: int = Field(default=32, ge=1, description="IVF-PQ: cells visited per query.")
    pq_m: int = Field(default=16, ge=1, description="IVF-PQ: sub-quantizers (divides the dim).")


class HnswSettings(_Strict):
    m: int = Field(
        default=16,
        ge=0,
        le=256,
        description="Qdrant HNSW: links per node; 0 builds no graph, so every search scans "
        "(the codes, where the collection is quantized: the fastest route on data with no "
        "neighbourhood structure, see docs/benchmarks.md).",
    )
    ef_construct: int = Field(default=128, ge=8, description="Qdrant HNSW: build beam width.")
    ef: int = Field(default=128, ge=8, description="Qdrant HNSW: query beam width.")


class IndexSettings(_Strict):
    backend: Literal["edge", "server", "faiss"] = Field(
        default="edge",
        description="edge: Qdrant Edge in-process (default); server: a Qdrant server or "
        "cluster at `url`; faiss: FAISS with its own payload store.",
    )
    path: Path | None = Field(
        default=None, description="Where embedded indexes live (default: TURNOUT_HOME/indexes)."
    )
    url: str | None = Field(
        default=None,
        description="Qdrant server URL (backend: server); `:memory:` or a folder path "
        "runs qdrant-client's local mode instead.",
    )
    api_key: SecretStr | None = Field(default=None, description="Qdrant server API key.")
    batch_size: int = Field(default=32, ge=1, description="Items encoded and written per batch.")
    max_image_pixels: int = Field(
        default=64_000_000,
        ge=1,
        description="Images (or rendered pages) claiming more pixels are refused as bombs.",
    )
    pdf_scale: float = Field(
        default=1.0, gt=0, le=8, description="PDF pages render at 72 dpi times this scale."
    )
    quantization: DenseQuantization = Field(
        default="none",
        description="Qdrant backends: compressed codes of new collections' dense vectors, kept "
        "in RAM and searched first, then re-scored with the originals: scalar (int8, 4x "
        "smaller), "
        "turbo4 and turbo2 (TurboQuant, 8x and 16x), binary (1 bit, 32x); none keeps only "
        "the originals. Recorded with each collection when it is created.",
    )
    oversampling: float = Field(
        default=4.0,
        ge=1.0,
        le=1000.0,
        description="Quantized collections: candidates re-scored per hit asked for.",
    )
    hnsw: HnswSettings = Field(default_factory=HnswSettings)
    faiss: FaissSettings = Field(default_factory=FaissSettings)
