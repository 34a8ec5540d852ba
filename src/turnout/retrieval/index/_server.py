"""A Qdrant server or cluster through `qdrant-client`: the scale-out backend.

`url` is the server (`http://host:6333`), or `:memory:` / a folder path for qdrant-client's
local mode, which runs the same client API in-process: the tests use it, since no server
can be started on the machines this project is built on.
"""

from __future__ import annotations

import atexit
import contextlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._backend import Found, Must
from ._edge import named_vectors, qdrant_filter
from ._errors import CollectionMismatchError, IndexBackendError
from ._lexical import SPARSE, query_terms
from ._types import CollectionSpec, Point

# One local-mode client per path: qdrant-client's local mode locks its folder per client.
_LOCAL: dict[str, Any] = {}


def _close_local() -> None:
    for client in _LOCAL.values():
        with contextlib.suppress(Exception):
            client.close()
    _LOCAL.clear()


def connect(url: str, api_key: str | None = None) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:  # pragma: no cover - the retrieval extra installs it
        raise IndexBackendError(
            "backend 'server' needs qdrant-client: pip install 'turnout[retrieval]'"
        ) from exc
    if url.startswith(("http://", "https://")):
        return QdrantClient(url=url, api_key=api_key)
    if not _LOCAL:
        atexit.register(_close_local)
    if url not in _LOCAL:
        _LOCAL[url] = (
            QdrantClient(location=":memory:") if url == ":memory:" else QdrantClient(path=url)
        )
    return _LOCAL[url]


def dense_codes(models: Any, quantization: str) -> Any:
    """qdrant-client's quantization config for a dense vector (the same codes as on Edge)."""
    if quantization == "none":
        return None
    if quantization == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
        )
    if quantization == "binary":
        return models.BinaryQuantization(
            binary=models.BinaryQuantizationConfig(
                always_ram=True, query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS
            )
        )
    bits = {"turbo4": models.TurboQuantBitSize.BITS4, "turbo2": models.TurboQuantBitSize.BITS2}
    return models.TurboQuantization(
        turbo=models.TurboQuantQuantizationConfig(always_ram=True, bits=bits[quantization])
    )


class ServerBackend:
    kind = "server"

    def __init__(
        self,
        client: Any,
        spec: CollectionSpec,
        *,
        ef: int,
        m: int,
        ef_construct: int,
        create: bool,
        oversampling: float = 4.0,
    ) -> None:
        from qdrant_client import models

        self.m = models
        self.client = client
        self.spec = spec
        self.name = spec.name
        self.ef = ef
        # Quantized dense vectors: search the codes, re-score the best with the originals.
        self.rescore = (
            models.QuantizationSearchParams(rescore=True, oversampling=oversampling)
            if spec.quantization != "none"
            else None
        )
        distance = {
            "cosine": models.Distance.COSINE,
            "dot": models.Distance.DOT,
            "euclid": models.Distance.EUCLID,
        }
        exists = self._call("check", lambda: client.collection_exists(self.name))
        if create and not exists:
            vectors = {
                "dense": models.VectorParams(
                    size=spec.dim,
                    distance=distance[spec.distance],
                    hnsw_config=models.HnswConfigDiff(m=m, ef_construct=ef_construct),
                    quantization_config=dense_codes(models, spec.quantization),
                )
            }
            if spec.multivector:
                quant = {
                    "none": None,
                    "scalar": models.ScalarQuantization(
                        scalar=models.ScalarQuantizationConfig(
                            type=models.ScalarType.INT8, always_ram=True
                        )
                    ),
                    "binary": models.BinaryQuantization(
                        binary=models.BinaryQuantizationConfig(always_ram=True)
                    ),
                }[spec.multivector.quantization]
                vectors["multi"] = models.VectorParams(
                    size=spec.multivector.dim,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    hnsw_config=models.HnswConfigDiff(m=0),
                    quantization_config=quant,
                )
                if spec.multivector.sketch > 0:
                    vectors["sketch"] = models.VectorParams(
                        size=spec.multivector.dim,
                        distance=models.Distance.COSINE,
                        multivector_config=models.MultiVectorConfig(
                            comparator=models.MultiVectorComparator.MAX_SIM
                        ),
                        hnsw_config=models.HnswConfigDiff(m=m, ef_construct=ef_construct),
                        datatype=models.Datatype.FLOAT16,
                    )
            documents = spec.documents
            sparse = None
            if documents is not None and documents.text_dim is not None:
                vectors["text"] = models.VectorParams(
                    size=documents.text_dim,
                    distance=models.Distance.COSINE,
                    hnsw_config=models.HnswConfigDiff(m=m, ef_construct=ef_construct),
                )
            if documents is not None and documents.lexical:
                sparse = {SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)}
            self._call(
                "create",
                lambda: client.create_collection(
                    self.name, vectors_config=vectors, sparse_vectors_config=sparse
                ),
            )
            self._call(
                "index",
                lambda: client.create_payload_index(
                    self.name,
                    "tenant",
                    field_schema=models.KeywordIndexParams(
                        type=models.KeywordIndexType.KEYWORD, is_tenant=True
                    ),
                ),
            )
        elif not exists:
            raise IndexBackendError(
                f"collection {self.name!r} is recorded here but missing on the Qdrant server; "
                "run `turnout index refresh` after creating it, or point `index.url` at the "
                "right server"
            )
        else:
            info = self._call("info", lambda: client.get_collection(self.name))
            params = info.config.params.vectors
            dense = params.get("dense") if isinstance(params, dict) else None
            if dense is None or dense.size != spec.dim:
                raise CollectionMismatchError(
                    f"Qdrant collection {self.name!r} has dense vectors of size "
                    f"{getattr(dense, 'size', None)}, not {spec.dim}; use another collection name"
                )

    def _call(self, what: str, fn: Any) -> Any:
        try:
            with warnings.catch_warnings():
                # Local mode warns that payload indexes and HNSW parameters do nothing there.
                warnings.filterwarnings("ignore", module="qdrant_client")
                warnings.filterwarnings("ignore", message=".*[Ll]ocal.*")
                return fn()
        except (CollectionMismatchError, IndexBackendError):
            raise
        except Exception as exc:
            raise IndexBackendError(
                f"Qdrant server, collection {self.name!r}: {what} failed: {exc}"
            ) from exc

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return

        def sparse(indices: list[int], values: list[float]) -> Any:
            return self.m.SparseVector(indices=indices, values=values)

        structs = [
            self.m.PointStruct(
                id=p.id, vector=named_vectors(self.spec, p, sparse), payload=p.payload
            )
            for p in points
        ]
        self._call("upsert", lambda: self.client.upsert(self.name, points=structs, wait=True))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            selector = self.m.PointIdsList(points=list(ids))
            self._call("delete", lambda: self.client.delete(self.name, selector, wait=True))

    def search(
        self,
        vector: NDArray[np.float32],
        must: Must,
        k: int,
        *,
        multivector: NDArray[np.float32] | None = None,
        candidates: int = 100,
        using: str = "dense",
    ) -> list[Found]:
        m = self.m
        flt = qdrant_filter(m, must)
        params = m.SearchParams(
            hnsw_ef=max(self.ef, k), quantization=self.rescore if using == "dense" else None
        )
        if multivector is None:
            result = self._call(
                "search",
                lambda: self.client.query_points(
                    self.name,
                    query=vector.tolist(),
                    using=using,
                    query_filter=flt,
                    limit=k,
                    search_params=params,
                    with_payload=True,
                ),
            )
        else:
            assert self.spec.multivector is not None
            sketch = self.spec.multivector.sketch > 0
            prefetch = m.Prefetch(
                query=multivector.tolist() if sketch else vector.tolist(),
                using="sketch" if sketch else "dense",
                filter=flt,
                limit=max(candidates, k),
                # The graph search must look at least as wide as the candidates it keeps.
                params=m.SearchParams(hnsw_ef=max(self.ef, candidates, k)),
            )
            result = self._call(
                "search",
                lambda: self.client.query_points(
                    self.name,
                    prefetch=prefetch,
                    query=multivector.tolist(),
                    using="multi",
                    query_filter=flt,
                    limit=k,
                    with_payload=True,
                ),
            )
        # qdrant-client's local mode returns the Euclidean distance, lower is closer.
        euclid = self.spec.distance == "euclid" and multivector is None and using == "dense"
        sign = -1.0 if euclid else 1.0
        return [(str(h.id), sign * float(h.score), dict(h.payload or {})) for h in result.points]

    def search_lexical(self, query: str, must: Must, k: int) -> list[Found]:
        m = self.m
        indices, values = query_terms(query)
        if not indices:
            return []
        flt = qdrant_filter(m, must)
        result = self._call(
            "search",
            lambda: self.client.query_points(
                self.name,
                query=m.SparseVector(indices=indices, values=values),
                using=SPARSE,
                query_filter=flt,
                limit=k,
                # IDF over the tenant's own points: another tenant's corpus moves no score.
                search_params=m.SearchParams(idf=m.IdfCorpusParams(corpus=flt)),
                with_payload=True,
            ),
        )
        return [(str(h.id), float(h.score), dict(h.payload or {})) for h in result.points]

    def retrieve(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        records = self._call("retrieve", lambda: self.client.retrieve(self.name, list(ids)))
        return {str(r.id): dict(r.payload or {}) for r in records}

    def count(self, must: Must) -> int:
        flt = qdrant_filter(self.m, must)
        result = self._call(
            "count", lambda: self.client.count(self.name, count_filter=flt, exact=True)
        )
        return int(result.count)

    def ids(self, must: Must) -> list[str]:
        out: list[str] = []
        offset = None
        flt = qdrant_filter(self.m, must)
        while True:
            start = offset
            records, offset = self._call(
                "scroll",
                lambda start=start: self.client.scroll(
                    self.name, scroll_filter=flt, limit=1000, offset=start, with_payload=False
                ),
            )
            out += [str(r.id) for r in records]
            if offset is None:
                return out

    def size_bytes(self) -> int:
        """An estimate (dense vectors only): a server does not report disk use per collection."""
        n = self.count({})
        per = self.spec.dim * 4
        return n * per

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
