"""The collections under `index.path`: each a folder with its record (collection.json).

Creating one records what it was made with (dimension, encoder, backend, codes...) and
makes its backend; opening one reads the record and opens the backend it names.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout.core import InvalidInputError

from ._backend import Backend
from ._collection import Collection, check_name
from ._errors import CollectionMismatchError, CollectionNotFoundError, IndexStorageError
from ._types import (
    DENSE_QUANTIZATIONS,
    CollectionSpec,
    DenseQuantization,
    Distance,
    DocumentOptions,
    MultivectorOptions,
)

if TYPE_CHECKING:
    from turnout.core import Settings


def collections_root(settings: Settings) -> Path:
    return (settings.index.path or settings.home_dir / "indexes").expanduser()


def _spec_path(folder: Path) -> Path:
    return folder / "collection.json"


def _backend(spec: CollectionSpec, folder: Path, settings: Settings, *, create: bool) -> Backend:
    index = settings.index
    if spec.backend == "edge":
        from ._edge import EdgeBackend

        return EdgeBackend(
            folder / "edge", spec, index.hnsw, create=create, oversampling=index.oversampling
        )
    if spec.backend == "faiss":
        from ._faiss import FaissBackend

        return FaissBackend(folder / "faiss", spec, index.faiss, create=create)
    from ._server import ServerBackend, connect

    if not index.url:
        raise InvalidInputError(
            "backend 'server' needs `index.url` (TURNOUT_INDEX__URL): the Qdrant server's URL, "
            "or ':memory:' / a folder for qdrant-client's local mode"
        )
    key = index.api_key.get_secret_value() if index.api_key else None
    return ServerBackend(
        connect(index.url, key),
        spec,
        ef=index.hnsw.ef,
        m=index.hnsw.m,
        ef_construct=index.hnsw.ef_construct,
        create=create,
        oversampling=index.oversampling,
    )


def create_collection(
    settings: Settings,
    name: str,
    dim: int,
    *,
    distance: Distance = "cosine",
    encoder: Any = None,
    multivector: MultivectorOptions | None = None,
    freshness_slo_s: float | None = None,
    backend: str | None = None,
    exist_ok: bool = False,
    documents: DocumentOptions | None = None,
    quantization: DenseQuantization | None = None,
) -> Collection:
    """Create a collection (or, with `exist_ok`, open it after checking it matches).

    With `documents`, a document collection: PDFs give page text (text layer or OCR) cut
    into passages, searched by dense text and BM25 beside the page images. `quantization`
    (default `index.quantization`) gives a Qdrant collection compressed codes of its dense
    vectors to search first, re-scored with the originals.
    """
    check_name(name)
    if dim < 1:
        raise InvalidInputError(f"dimension must be at least 1, got {dim}")
    if distance not in ("cosine", "dot", "euclid"):
        raise InvalidInputError(f"distance {distance!r}: expected cosine, dot or euclid")
    folder = collections_root(settings) / name
    if _spec_path(folder).is_file():
        if not exist_ok:
            raise InvalidInputError(f"collection {name!r} exists already ({folder})")
        collection = open_collection(settings, name)
        problems = []
        if collection.spec.dim != dim:
            problems.append(f"dimension {collection.spec.dim}, not {dim}")
        if collection.spec.distance != distance:
            problems.append(f"distance {collection.spec.distance}, not {distance}")
        if quantization is not None and collection.spec.quantization != quantization:
            problems.append(f"quantization {collection.spec.quantization}, not {quantization}")
        if (collection.spec.documents is None) != (documents is None):
            problems.append(
                "page text and passages"
                if collection.spec.documents is not None
                else "no page text or passages"
            )
        if problems:
            collection.close()
            raise CollectionMismatchError(
                f"collection {name!r} exists with {'; '.join(problems)}; choose another name"
            )
        if encoder is not None:
            try:
                collection.check_encoder(encoder)
            except CollectionMismatchError:
                collection.close()
                raise
        return collection
    spec = CollectionSpec(
        name=name,
        dim=dim,
        distance=distance,
        encoder=getattr(encoder, "name", None) if encoder is not None else None,
        encoder_fingerprint=getattr(encoder, "fingerprint", None) if encoder is not None else None,
        multivector=multivector,
        freshness_slo_s=freshness_slo_s,
        backend=backend or settings.index.backend,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        documents=documents,
        quantization=quantization or settings.index.quantization,
    )
    if spec.backend not in ("edge", "server", "faiss"):
        raise InvalidInputError(f"backend {spec.backend!r}: expected edge, server or faiss")
    if spec.quantization not in DENSE_QUANTIZATIONS:
        raise InvalidInputError(
            f"quantization {spec.quantization!r}: expected one of {', '.join(DENSE_QUANTIZATIONS)}"
        )
    if spec.backend == "faiss" and spec.quantization != "none":
        raise InvalidInputError(
            f"collection {name!r}: quantization {spec.quantization!r} is for the Qdrant "
            "backends (edge, server); FAISS keeps exact vectors (index.faiss.kind flat or "
            "hnsw) or IVF-PQ codes (kind ivfpq): set index.quantization to none for FAISS"
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        store = _backend(spec, folder, settings, create=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    tmp = _spec_path(folder).with_suffix(".tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=2))
    os.replace(tmp, _spec_path(folder))
    return Collection(spec, folder, store)


def read_spec(settings: Settings, name: str) -> CollectionSpec:
    check_name(name)
    folder = collections_root(settings) / name
    path = _spec_path(folder)
    if not path.is_file():
        known = list_collections(settings)
        hint = f"; collections here: {', '.join(known)}" if known else ""
        raise CollectionNotFoundError(
            f"no collection {name!r} under {folder.parent}{hint} (`turnout index add` creates one)"
        )
    try:
        return CollectionSpec.from_json(json.loads(path.read_text("utf-8")))
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexStorageError(f"{path}: not a collection record turnout wrote ({exc})") from exc


def open_collection(settings: Settings, name: str) -> Collection:
    """Open an existing collection on the backend it was created with."""
    spec = read_spec(settings, name)
    folder = collections_root(settings) / name
    return Collection(spec, folder, _backend(spec, folder, settings, create=False))


def set_freshness_slo(settings: Settings, name: str, slo_s: float | None) -> CollectionSpec:
    from dataclasses import replace

    spec = replace(read_spec(settings, name), freshness_slo_s=slo_s)
    path = _spec_path(collections_root(settings) / name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=2))
    os.replace(tmp, path)
    return spec


def list_collections(settings: Settings) -> list[str]:
    root = collections_root(settings)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if _spec_path(p).is_file())
