"""Qdrant Edge: the Qdrant engine in-process (`qdrant-edge-py`), a shard on disk.

Named vectors: `dense` (the single vector, HNSW-indexed) and, for late interaction,
`multi` (a MaxSim multivector, not graph-indexed: it only re-ranks what the first stage
prefetched) and `sketch` (a few centroids per item in float16, a MaxSim multivector the
first stage searches; collections made before sketches prefetch by `dense`).
A document collection adds `text` (passages' text-encoder vectors, where the collection's
own encoder is another) and the sparse `bm25` (Qdrant's BM25 with the IDF modifier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._backend import Found, Must, directory_bytes
from ._errors import CollectionMismatchError, IndexBackendError, IndexStorageError
from ._lexical import SPARSE, document_terms, query_terms
from ._types import CollectionSpec, Point

if TYPE_CHECKING:
    from turnout.core._index_settings import HnswSettings


def _import() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:  # pragma: no cover - the retrieval extra installs it
        raise IndexBackendError(
            "backend 'edge' needs qdrant-edge-py: pip install 'turnout[retrieval]'"
        ) from exc
    return qdrant_edge


def named_vectors(
    spec: CollectionSpec, point: Point, sparse: Callable[[list[int], list[float]], Any]
) -> dict[str, Any]:
    """A point's named vectors as both Qdrant clients take them (Edge and qdrant-client):
    `dense`, and as the collection has them `multi` and `sketch` (late interaction), `text`
    (passages) and the BM25 sparse vector, built by `sparse(indices, values)`."""
    vec: dict[str, Any] = {"dense": point.vector.tolist()}
    if spec.multivector is not None:
        if point.multivector is None:
            raise CollectionMismatchError(
                f"collection {spec.name!r} stores multivectors; item "
                f"{point.payload.get('item_id')!r} has none"
            )
        vec["multi"] = point.multivector.tolist()
        if spec.multivector.sketch > 0:
            if point.sketch is None:
                raise CollectionMismatchError(
                    f"collection {spec.name!r} stores sketches; item "
                    f"{point.payload.get('item_id')!r} has none"
                )
            vec["sketch"] = point.sketch.tolist()
    if point.text_vector is not None:
        vec["text"] = point.text_vector.tolist()
    if point.lexical:
        indices, values = document_terms(point.lexical)
        if indices:
            vec[SPARSE] = sparse(indices, values)
    return vec


def qdrant_filter(q: Any, must: Must) -> Any:
    """A Qdrant Filter from `must`; works for qdrant_edge and qdrant_client.models alike."""
    conditions = []
    for key, value in must.items():
        if isinstance(value, list):
            match = q.MatchAny(any=value) if _is_client(q) else q.MatchAny(value)
        else:
            match = q.MatchValue(value=value) if _is_client(q) else q.MatchValue(value)
        conditions.append(q.FieldCondition(key=key, match=match))
    return q.Filter(must=conditions)


def _is_client(q: Any) -> bool:
    return bool(q.__name__.startswith("qdrant_client"))


def dense_codes(q: Any, quantization: str) -> Any:
    """Qdrant Edge's quantization config for a dense vector (`_server.dense_codes` makes the
    same codes with qdrant-client's models)."""
    if quantization == "none":
        return None
    if quantization == "scalar":
        return q.ScalarQuantizationConfig(q.ScalarType.Int8, always_ram=True)
    if quantization == "binary":
        # The query stays 8-bit against 1-bit codes: far better ranking than 1 against 1.
        return q.BinaryQuantizationConfig(
            always_ram=True, query_encoding=q.BinaryQuantizationQueryEncoding.Scalar8Bits
        )
    bits = {"turbo4": q.TurboQuantBitSize.Bits4, "turbo2": q.TurboQuantBitSize.Bits2}
    return q.TurboQuantQuantizationConfig(always_ram=True, bits=bits[quantization])


class EdgeBackend:
    kind = "edge"

    def __init__(
        self,
        path: Path,
        spec: CollectionSpec,
        hnsw: HnswSettings,
        *,
        create: bool,
        oversampling: float = 4.0,
    ):
        self.q = q = _import()
        self.path = path
        self.spec = spec
        self.ef = hnsw.ef
        # Quantized dense vectors: search the codes, re-score the best with the originals.
        self.rescore = (
            q.QuantizationSearchParams(rescore=True, oversampling=oversampling)
            if spec.quantization != "none"
            else None
        )
        distance = {"cosine": q.Distance.Cosine, "dot": q.Distance.Dot, "euclid": q.Distance.Euclid}
        vectors = {
            "dense": q.EdgeVectorParams(
                size=spec.dim,
                distance=distance[spec.distance],
                hnsw_config=q.HnswIndexConfig(
                    m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=10_000
                ),
                quantization_config=dense_codes(q, spec.quantization),
            )
        }
        if spec.multivector:
            quant = {
                "none": None,
                "scalar": q.ScalarQuantizationConfig(q.ScalarType.Int8, always_ram=True),
                "binary": q.BinaryQuantizationConfig(always_ram=True),
            }[spec.multivector.quantization]
            vectors["multi"] = q.EdgeVectorParams(
                size=spec.multivector.dim,
                distance=q.Distance.Cosine,
                multivector_config=q.MultiVectorConfig(q.MultiVectorComparator.MaxSim),
                # m=0: no graph; the multivector only re-ranks the dense prefetch.
                hnsw_config=q.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=0),
                quantization_config=quant,
                datatype=q.VectorStorageDatatype.Float16
                if spec.multivector.quantization != "none"
                else None,
            )
            if spec.multivector.sketch > 0:
                vectors["sketch"] = q.EdgeVectorParams(
                    size=spec.multivector.dim,
                    distance=q.Distance.Cosine,
                    multivector_config=q.MultiVectorConfig(q.MultiVectorComparator.MaxSim),
                    hnsw_config=q.HnswIndexConfig(
                        m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=10_000
                    ),
                    datatype=q.VectorStorageDatatype.Float16,
                )
        documents = spec.documents
        sparse = {}
        if documents is not None and documents.text_dim is not None:
            vectors["text"] = q.EdgeVectorParams(
                size=documents.text_dim,
                distance=q.Distance.Cosine,
                hnsw_config=q.HnswIndexConfig(
                    m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=10_000
                ),
            )
        if documents is not None and documents.lexical:
            sparse[SPARSE] = q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)
        config = q.EdgeConfig(vectors=vectors, sparse_vectors=sparse or None)
        try:
            if create:
                self.shard = q.EdgeShard.create(str(path), config)
                self.shard.update(
                    q.UpdateOperation.create_field_index("tenant", q.PayloadSchemaType.Keyword)
                )
            else:
                self.shard = q.EdgeShard.load(str(path))
        except Exception as exc:
            if "WouldBlock" in str(exc):  # another process holds the shard's write-ahead log
                raise IndexStorageError(
                    f"{path}: the collection is open in another process (a running `turnout "
                    "serve`, or another `turnout index` command); embedded collections open "
                    "in one process at a time: ask the gateway (GET /v1/collections/NAME), "
                    "wait for the other command, or use a Qdrant server (index.backend: server)"
                ) from exc
            raise IndexStorageError(
                f"{path}: cannot {'create' if create else 'open'} the Qdrant Edge shard ({exc}); "
                f"if the folder is damaged, delete it and run `turnout index refresh`"
            ) from exc

    def _vector(self, point: Point) -> Any:
        return named_vectors(self.spec, point, lambda i, v: self.q.SparseVector(i, v))

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        q = self.q
        batch = [q.Point(p.id, self._vector(p), p.payload) for p in points]
        self._update(q.UpdateOperation.upsert_points(batch))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._update(self.q.UpdateOperation.delete_points(list(ids)))

    def _update(self, op: Any) -> None:
        try:
            self.shard.update(op)
        except Exception as exc:
            raise IndexBackendError(f"{self.path}: Qdrant Edge refused the update: {exc}") from exc

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
        q = self.q
        flt = qdrant_filter(q, must)
        params = q.SearchParams(
            hnsw_ef=max(self.ef, k), quantization=self.rescore if using == "dense" else None
        )
        dense = q.Query.Nearest(vector.tolist(), using=using)
        if multivector is None:
            request = q.QueryRequest(
                limit=k, query=dense, filter=flt, params=params, with_payload=True
            )
        else:
            assert self.spec.multivector is not None
            first = (
                q.Query.Nearest(multivector.tolist(), using="sketch")
                if self.spec.multivector.sketch > 0
                else dense
            )
            # The graph search must look at least as wide as the candidates it keeps.
            wide = q.SearchParams(hnsw_ef=max(self.ef, candidates, k))
            prefetch = q.Prefetch(limit=max(candidates, k), query=first, filter=flt, params=wide)
            request = q.QueryRequest(
                limit=k,
                prefetches=[prefetch],
                query=q.Query.Nearest(multivector.tolist(), using="multi"),
                filter=flt,
                with_payload=True,
            )
        hits = self.shard.query(request)
        euclid = self.spec.distance == "euclid" and multivector is None and using == "dense"
        sign = -1.0 if euclid else 1.0
        return [(str(h.id), sign * float(h.score), dict(h.payload or {})) for h in hits]

    def search_lexical(self, query: str, must: Must, k: int) -> list[Found]:
        q = self.q
        indices, values = query_terms(query)
        if not indices:
            return []
        flt = qdrant_filter(q, must)
        request = q.QueryRequest(
            limit=k,
            query=q.Query.Nearest(q.SparseVector(indices, values), using=SPARSE),
            filter=flt,
            # IDF over the tenant's own points: another tenant's corpus moves no score.
            params=q.SearchParams(idf=q.IdfParams(corpus=flt)),
            with_payload=True,
        )
        hits = self.shard.query(request)
        return [(str(h.id), float(h.score), dict(h.payload or {})) for h in hits]

    def retrieve(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        records = self.shard.retrieve(list(ids), with_payload=True, with_vector=False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    def count(self, must: Must) -> int:
        return int(
            self.shard.count(self.q.CountRequest(exact=True, filter=qdrant_filter(self.q, must)))
        )

    def ids(self, must: Must) -> list[str]:
        out: list[str] = []
        offset = None
        while True:
            records, offset = self.shard.scroll(
                self.q.ScrollRequest(
                    offset=offset,
                    limit=1000,
                    filter=qdrant_filter(self.q, must),
                    with_payload=False,
                )
            )
            out += [str(r.id) for r in records]
            if offset is None:
                return out

    def optimize(self) -> None:
        """Build the HNSW graph now (Qdrant otherwise builds it as segments fill)."""
        self.shard.optimize()

    def size_bytes(self) -> int:
        return directory_bytes(self.path)

    def flush(self) -> None:
        self.shard.flush()

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()
