"""FAISS with its own persistence: `store.sqlite` (the truth) plus `vectors.faiss` (derived).

The SQLite store holds every point: id, tenant, payload, the vector and, for late
interaction, the stored multivector codes and the sketch (a few float16 centroids per
item; the first stage is an exact MaxSim over the allowed items' sketches, held in memory
after the first search following a write). Each write is one SQLite transaction and bumps a
generation number. The FAISS index is written to `vectors.faiss` (atomically, with the
generation it holds) on `close`; on open, an index file whose generation is not the
store's (a crash, a copy) is rebuilt from the store, so the two never disagree.

Searches are restricted to the ids `must` allows (a SQL query over the store, cached per
generation) through FAISS's ID selectors, so deleted points (HNSW cannot remove) and other
tenants' points are never candidates.

A document collection's passages also store a text-encoder vector and their text for BM25.
Both searches run over structures derived from the store on first use after a write: an
exact FAISS inner-product index over the text vectors, and a `bm25s` index per tenant
(see `_lexical.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._backend import Found, Must
from ._errors import CollectionMismatchError, IndexBackendError, IndexStorageError
from ._late import decode_multivector, encode_multivector, maxsim, maxsim_rows
from ._lexical import Bm25Index
from ._types import CollectionSpec, Point

if TYPE_CHECKING:
    from turnout.core._index_settings import FaissSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    pid TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    payload TEXT NOT NULL,
    vector BLOB NOT NULL,
    multi BLOB,
    text_vector BLOB,
    lexical TEXT,
    sketch BLOB
);
CREATE INDEX IF NOT EXISTS points_tenant ON points (tenant);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# IVF-PQ needs this many points per cell (and 256 per PQ code) to train; below, flat.
_TRAIN_PER_LIST = 39


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover
        raise IndexBackendError(
            "backend 'faiss' needs faiss-cpu: pip install 'turnout[retrieval]'"
        ) from exc
    return faiss


class FaissBackend:
    kind = "faiss"

    def __init__(self, path: Path, spec: CollectionSpec, options: FaissSettings, *, create: bool):
        self.faiss = _faiss()
        self.path = path
        self.spec = spec
        self.options = options
        self.store_path = path / "store.sqlite"
        self.index_path = path / "vectors.faiss"
        if not create and not self.store_path.is_file():
            raise IndexStorageError(
                f"{self.store_path}: missing; the FAISS collection's store is gone (delete "
                f"{path} and index again)"
            )
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.store_path, isolation_level=None)
            self.db.executescript(_SCHEMA)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(points)")}
            for column, kind in (("text_vector", "BLOB"), ("lexical", "TEXT"), ("sketch", "BLOB")):
                if column not in columns:  # a store written before these columns
                    self.db.execute(f"ALTER TABLE points ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as exc:
            raise IndexStorageError(f"{self.store_path}: not a readable store ({exc})") from exc
        self._selectors: dict[str, tuple[Any, int]] = {}
        self._derived: dict[str, Any] = {}
        self.index: Any = None
        self.dirty = False
        self._load_or_rebuild()

    # -- the FAISS index ---------------------------------------------------------------

    @property
    def metric(self) -> int:
        return int(
            self.faiss.METRIC_L2
            if self.spec.distance == "euclid"
            else self.faiss.METRIC_INNER_PRODUCT
        )

    def _generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _empty_index(self, n_train: int) -> Any:
        f, d, o = self.faiss, self.spec.dim, self.options
        if o.kind == "hnsw":
            base = f.IndexHNSWFlat(d, o.hnsw_m, self.metric)
            base.hnsw.efConstruction = o.ef_construction
            base.hnsw.efSearch = o.ef_search
            return f.IndexIDMap2(base)
        if o.kind == "ivfpq" and d % o.pq_m == 0 and n_train >= max(256, _TRAIN_PER_LIST):
            nlist = max(1, min(o.nlist, n_train // _TRAIN_PER_LIST))
            quantizer = f.IndexFlat(d, self.metric)
            base = f.IndexIVFPQ(quantizer, d, nlist, o.pq_m, 8, self.metric)
            base.nprobe = min(o.nprobe, nlist)
            # IVF takes ids itself; wrapped in an IDMap, remove_ids would shift the ids.
            return base
        return f.IndexIDMap2(f.IndexFlat(d, self.metric))

    def _load_or_rebuild(self) -> None:
        generation = self._generation()
        marker = self.path / "vectors.faiss.generation"
        if self.index_path.is_file() and marker.is_file():
            try:
                saved = int(marker.read_text().strip())
            except ValueError:
                saved = -1
            if saved == generation:
                try:
                    self.index = self.faiss.read_index(str(self.index_path))
                    self._tune()
                    return
                except RuntimeError:
                    pass  # unreadable: rebuilt below from the store
        self.rebuild()

    def _base(self) -> Any:
        inner = getattr(self.index, "index", None)
        return self.faiss.downcast_index(inner if inner is not None else self.index)

    def _tune(self) -> None:
        base = self._base()
        if hasattr(base, "hnsw"):
            base.hnsw.efSearch = self.options.ef_search
        if hasattr(base, "nprobe"):
            base.nprobe = min(self.options.nprobe, base.nlist)  # not kept in the file

    def rebuild(self) -> None:
        """A fresh index from every point in the store (after a crash, or to train IVF-PQ)."""
        rows = self.db.execute("SELECT fid, vector FROM points ORDER BY fid").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
            -1, self.spec.dim
        )
        self.index = self._empty_index(len(rows))
        base = self._base()
        if not base.is_trained and len(rows):
            base.train(vectors)
        if len(rows):
            self.index.add_with_ids(vectors, ids)
        self.dirty = True

    def save(self) -> None:
        """Write the index atomically with the generation it matches."""
        if not self.dirty:
            return
        tmp = self.index_path.with_suffix(".faiss.tmp")
        self.faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.index_path)
        marker = self.path / "vectors.faiss.generation"
        marker_tmp = marker.with_suffix(".tmp")
        marker_tmp.write_text(str(self._generation()))
        os.replace(marker_tmp, marker)
        self.dirty = False

    # -- writes --------------------------------------------------------------------------

    def _check(self, point: Point) -> None:
        if point.vector.shape != (self.spec.dim,):
            raise CollectionMismatchError(
                f"collection {self.spec.name!r} holds vectors of dimension {self.spec.dim}; "
                f"item {point.payload.get('item_id')!r} has shape {point.vector.shape}"
            )
        if self.spec.multivector is not None and point.multivector is None:
            raise CollectionMismatchError(
                f"collection {self.spec.name!r} stores multivectors; item "
                f"{point.payload.get('item_id')!r} has none"
            )
        mv = self.spec.multivector
        if mv is not None and mv.sketch > 0 and point.sketch is None:
            raise CollectionMismatchError(
                f"collection {self.spec.name!r} stores sketches; item "
                f"{point.payload.get('item_id')!r} has none"
            )

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        for p in points:
            self._check(p)
        mv = self.spec.multivector
        self.db.execute("BEGIN IMMEDIATE")
        try:
            old = self._fids([p.id for p in points])
            if old:
                marks = ",".join("?" * len(old))
                self.db.execute(f"DELETE FROM points WHERE fid IN ({marks})", [r[0] for r in old])
            rows = [
                (
                    p.id,
                    str(p.payload["tenant"]),
                    json.dumps(p.payload, sort_keys=True),
                    np.ascontiguousarray(p.vector, dtype=np.float32).tobytes(),
                    encode_multivector(p.multivector, mv.quantization)
                    if mv is not None and p.multivector is not None
                    else None,
                    None
                    if p.text_vector is None
                    else np.ascontiguousarray(p.text_vector, dtype=np.float32).tobytes(),
                    p.lexical or None,
                    None if p.sketch is None else p.sketch.astype(np.float16).tobytes(),
                )
                for p in points
            ]
            self.db.executemany(
                "INSERT INTO points (pid, tenant, payload, vector, multi, text_vector, lexical, "
                "sketch) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._bump()
            new = self._fids([p.id for p in points])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._remove_from_index(old)
        vectors = np.stack([np.asarray(p.vector, dtype=np.float32) for p in points])
        order = {pid: fid for fid, pid in new}
        ids = np.array([order[p.id] for p in points], dtype=np.int64)
        base = self._base()
        if not base.is_trained:
            self.rebuild()
        else:
            self.index.add_with_ids(vectors, ids)
        if self.options.kind == "ivfpq" and isinstance(base, self.faiss.IndexFlat):
            # Enough points now to train IVF-PQ?
            n = self.count({})
            if n >= max(256, _TRAIN_PER_LIST * min(self.options.nlist, 8)):
                self.rebuild()
        self.dirty = True

    def _fids(self, pids: Sequence[str]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(pids), 500):
            chunk = list(pids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            out += self.db.execute(
                f"SELECT fid, pid FROM points WHERE pid IN ({marks})", chunk
            ).fetchall()
        return out

    def _remove_from_index(self, rows: list[Any]) -> None:
        if not rows:
            return
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        # HNSW cannot remove; the selector drops ids the store no longer has.
        with contextlib.suppress(RuntimeError):
            self.index.remove_ids(ids)

    def _bump(self) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        self._selectors.clear()
        self._derived.clear()

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._fids(ids)
            for start in range(0, len(rows), 500):
                chunk = [r[0] for r in rows[start : start + 500]]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM points WHERE fid IN ({marks})", chunk)
            self._bump()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._remove_from_index(rows)
        self.dirty = True

    # -- reads ---------------------------------------------------------------------------

    def _where(self, must: Must) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for key, value in must.items():
            column = "tenant" if key == "tenant" else f"json_extract(payload, '$.{key}')"
            values = value if isinstance(value, list) else [value]
            if not values:
                clauses.append("0")
                continue
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            args += [int(v) if isinstance(v, bool) else v for v in values]
        return (" AND ".join(clauses) or "1"), args

    def _selector(self, must: Must) -> tuple[Any, int]:
        key = json.dumps(must, sort_keys=True)
        if key not in self._selectors:
            where, args = self._where(must)
            fids = np.array(
                [r[0] for r in self.db.execute(f"SELECT fid FROM points WHERE {where}", args)],
                dtype=np.int64,
            )
            selector = self.faiss.IDSelectorBatch(fids) if len(fids) else None
            if len(self._selectors) > 64:
                self._selectors.clear()
            self._selectors[key] = (selector, len(fids))
        return self._selectors[key]

    def _params(self, selector: Any) -> Any:
        base = self._base()
        if hasattr(base, "hnsw"):
            return self.faiss.SearchParametersHNSW(sel=selector, efSearch=self.options.ef_search)
        if hasattr(base, "nprobe"):
            return self.faiss.SearchParametersIVF(sel=selector, nprobe=base.nprobe)
        return self.faiss.SearchParameters(sel=selector)

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
        selector, allowed = self._selector(must)
        if selector is None:
            return []
        if using == "text":
            return self._search_text(vector, selector, min(allowed, k))
        first = min(allowed, max(candidates, k) if multivector is not None else k)
        mv = self.spec.multivector
        if multivector is not None and mv is not None and mv.sketch > 0:
            found = self._first_stage(multivector, must, first)
        else:
            query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
            distances, fids = self.index.search(query, first, params=self._params(selector))
            found = [
                (int(f), float(d)) for f, d in zip(fids[0], distances[0], strict=True) if f >= 0
            ]
        rows = self._rows([f for f, _ in found], with_multi=multivector is not None)
        if multivector is None:
            out = []
            for fid, dist in found:
                if fid in rows:
                    score = (
                        -float(np.sqrt(max(dist, 0.0)))
                        if self.metric == self.faiss.METRIC_L2
                        else dist
                    )
                    out.append((rows[fid][0], score, rows[fid][1]))
            return out[:k]
        assert mv is not None
        scored = []
        for fid, _ in found:
            if fid in rows:
                pid, payload, blob = rows[fid]
                doc = decode_multivector(blob, mv.dim, mv.quantization)
                scored.append((pid, maxsim(multivector, doc), payload))
        scored.sort(key=lambda t: (-t[1], t[0]))
        return scored[:k]

    def _sketches(self, must: Must) -> tuple[NDArray[np.float32], Any, Any]:
        """The allowed points' sketches as one float32 matrix, their fids, and where each
        point's rows start (derived from the store, cached until the next write)."""
        key = "sketch:" + json.dumps(must, sort_keys=True)
        if key not in self._derived:
            mv = self.spec.multivector
            assert mv is not None
            where, args = self._where(must)
            rows = self.db.execute(
                f"SELECT fid, sketch FROM points WHERE {where} AND sketch IS NOT NULL ORDER BY fid",
                args,
            ).fetchall()
            parts = [np.frombuffer(r[1], dtype=np.float16).reshape(-1, mv.dim) for r in rows]
            counts = np.array([len(part) for part in parts], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            matrix = (
                np.concatenate(parts).astype(np.float32)
                if parts
                else np.zeros((0, mv.dim), dtype=np.float32)
            )
            # A matrix per filter is 4 bytes x dim x sketch per allowed item: keep a few.
            cached = [k for k in self._derived if k.startswith("sketch:")]
            for old in cached if len(cached) >= 4 else []:
                del self._derived[old]
            if len(self._derived) > 64:
                self._derived.clear()
            fids = np.array([r[0] for r in rows], dtype=np.int64)
            self._derived[key] = (matrix, fids, starts[: len(rows)])
        out: tuple[NDArray[np.float32], Any, Any] = self._derived[key]
        return out

    def _first_stage(
        self, multivector: NDArray[np.float32], must: Must, first: int
    ) -> list[tuple[int, float]]:
        """The `first` allowed points with the highest MaxSim over their sketches."""
        matrix, fids, starts = self._sketches(must)
        if first < 1 or len(fids) == 0:
            return []
        scores = maxsim_rows(np.ascontiguousarray(multivector, dtype=np.float32), matrix, starts)
        if first < len(scores):
            top = np.argpartition(-scores, first - 1)[:first]
        else:
            top = np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(fids[i]), float(scores[i])) for i in top]

    def _text_index(self) -> Any:
        """An exact inner-product index over the passages' text vectors (derived, cached)."""
        if "text" not in self._derived:
            documents = self.spec.documents
            if documents is None or documents.text_dim is None:
                raise CollectionMismatchError(
                    f"collection {self.spec.name!r} has no separate text vectors"
                )
            rows = self.db.execute(
                "SELECT fid, text_vector FROM points WHERE text_vector IS NOT NULL ORDER BY fid"
            ).fetchall()
            index = self.faiss.IndexIDMap2(self.faiss.IndexFlatIP(documents.text_dim))
            if rows:
                vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                index.add_with_ids(vectors.reshape(len(rows), -1), ids)
            self._derived["text"] = index
        return self._derived["text"]

    def _search_text(self, vector: NDArray[np.float32], selector: Any, k: int) -> list[Found]:
        index = self._text_index()
        if k < 1 or index.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, fids = index.search(query, k, params=self.faiss.SearchParameters(sel=selector))
        found = [(int(f), float(d)) for f, d in zip(fids[0], scores[0], strict=True) if f >= 0]
        rows = self._rows([f for f, _ in found], with_multi=False)
        return [(rows[f][0], score, rows[f][1]) for f, score in found if f in rows]

    def search_lexical(self, query: str, must: Must, k: int) -> list[Found]:
        key = "bm25:" + json.dumps(must, sort_keys=True)
        if key not in self._derived:
            where, args = self._where(must)
            rows = self.db.execute(
                f"SELECT pid, lexical FROM points WHERE {where} AND lexical IS NOT NULL "
                "ORDER BY fid",
                args,
            ).fetchall()
            if len(self._derived) > 64:
                self._derived.clear()
            self._derived[key] = Bm25Index([r[0] for r in rows], [r[1] for r in rows])
        found = self._derived[key].search(query, k)
        payloads = self.retrieve([pid for pid, _ in found])
        return [(pid, score, payloads[pid]) for pid, score in found if pid in payloads]

    def _rows(self, fids: list[int], *, with_multi: bool) -> dict[int, Any]:
        if not fids:
            return {}
        marks = ",".join("?" * len(fids))
        cols = "fid, pid, payload" + (", multi" if with_multi else "")
        out = {}
        for row in self.db.execute(f"SELECT {cols} FROM points WHERE fid IN ({marks})", fids):
            out[row[0]] = (row[1], json.loads(row[2]), *([row[3]] if with_multi else []))
        return out

    def retrieve(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for pid, payload in self.db.execute(
                f"SELECT pid, payload FROM points WHERE pid IN ({marks})", chunk
            ):
                out[pid] = json.loads(payload)
        return out

    def count(self, must: Must) -> int:
        where, args = self._where(must)
        return int(
            self.db.execute(f"SELECT COUNT(*) FROM points WHERE {where}", args).fetchone()[0]
        )

    def ids(self, must: Must) -> list[str]:
        where, args = self._where(must)
        return [r[0] for r in self.db.execute(f"SELECT pid FROM points WHERE {where}", args)]

    def size_bytes(self) -> int:
        """The store's vectors and codes plus the FAISS index as it would be written."""
        stored = self.db.execute(
            "SELECT COALESCE(SUM(LENGTH(vector) + COALESCE(LENGTH(multi), 0) "
            "+ COALESCE(LENGTH(sketch), 0) + LENGTH(payload)), 0) FROM points"
        ).fetchone()[0]
        index_bytes = int(self.faiss.serialize_index(self.index).nbytes) if self.index.ntotal else 0
        return int(stored) + index_bytes

    def multivector_bytes(self) -> int:
        """The stored multivector codes (the re-ranking stage's)."""
        return int(
            self.db.execute("SELECT COALESCE(SUM(LENGTH(multi)), 0) FROM points").fetchone()[0]
        )

    def sketch_bytes(self) -> int:
        """The stored sketches (float16; the first stage's)."""
        return int(
            self.db.execute("SELECT COALESCE(SUM(LENGTH(sketch)), 0) FROM points").fetchone()[0]
        )

    def flush(self) -> None:
        return None  # every write is already a committed transaction

    def close(self) -> None:
        self.save()
        self.db.close()
