"""The retrieval evaluation: read the dataset, encode (through the cache), score, compare.

    report = evaluate_retrieval(load_dataset("flickr30k"), ["openai/clip-vit-base-patch32"])

Encoders named by spec are loaded one at a time and released after encoding, so two
large models never sit in memory together. Every encoder is scored on the same images:
one that any encoder could not read is left out for all, and counted.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from turnout.core import InvalidInputError
from turnout.retrieval import (
    DatasetNotFoundError,
    DualEncoder,
    EmbeddingCache,
    EncoderOptions,
    ImageCaptions,
    RetrievalDataset,
    UnreadableImageError,
    load_encoder,
    probe_image,
)

from ._captions import GROUPS, caption_type
from ._metrics import bootstrap_ci, image_to_text_ranks, recall_at_k, text_to_image_ranks
from ._progress import Advance, EvalProgress, SilentProgress
from ._published import published_recall
from ._results import (
    DirectionResult,
    EncoderResult,
    EncoderTimings,
    GroupRecall,
    Recall,
    RetrievalReport,
    SkippedImage,
)

Vectors = dict[str, NDArray[np.float32]]


@dataclass
class _Encoded:
    name: str
    identity: dict[str, Any]
    fingerprint: str
    options: dict[str, Any]
    images: Vectors
    texts: Vectors
    truncated: int
    timings: EncoderTimings


def evaluate_retrieval(
    dataset: RetrievalDataset,
    encoders: Sequence[DualEncoder | str],
    *,
    ks: Sequence[int] = (1, 5, 10),
    options: EncoderOptions | None = None,
    cache: EmbeddingCache | None = None,
    strict: bool = False,
    progress: EvalProgress | None = None,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
    model_cache_dir: Path | None = None,
) -> RetrievalReport:
    """Recall@k both ways for each encoder on `dataset`, with intervals and breakdowns."""
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise InvalidInputError(f"k values must be positive integers, got {list(ks)}")
    if not encoders:
        raise InvalidInputError("give at least one encoder")
    report_progress = progress or SilentProgress()
    started = time.monotonic()
    hashes, skipped = _probe(dataset, strict, report_progress)
    probe_s = time.monotonic() - started

    encoded = []
    for encoder in encoders:
        encoded.append(
            _encode(
                encoder,
                dataset,
                hashes,
                skipped,
                strict,
                options,
                cache,
                report_progress,
                model_cache_dir,
            )
        )
    kept = dataset.without({s.id for s in skipped})
    texts, owners = kept.captions()
    owner_array = np.asarray(owners, dtype=np.int64)
    types = [caption_type(t) for t in texts]
    results = [
        _score(
            e,
            kept,
            hashes,
            texts,
            owner_array,
            types,
            ks,
            bootstrap_resamples,
            seed,
            dataset.standard,
            report_progress,
        )
        for e in encoded
    ]
    return RetrievalReport(
        dataset=_dataset_info(dataset, kept, hashes),
        ks=ks,
        encoders=results,
        skipped=skipped,
        versions=_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        timings={"read_images_s": probe_s, "total_s": time.monotonic() - started},
        bootstrap={
            "method": "percentile bootstrap over queries",
            "level": 0.95,
            "resamples": bootstrap_resamples,
            "seed": seed,
        },
        item_ids=[i.id for i in kept.items],
        item_paths=[str(i.path) for i in kept.items],
        captions=texts,
        caption_image=owner_array,
    )


def _probe(
    dataset: RetrievalDataset, strict: bool, progress: EvalProgress
) -> tuple[dict[str, str], list[SkippedImage]]:
    """Hash every image and check its header; unreadable ones are fatal or skipped."""
    hashes: dict[str, str] = {}
    skipped: list[SkippedImage] = []

    def probe(item: ImageCaptions) -> tuple[ImageCaptions, str | Exception]:
        try:
            return item, probe_image(item.path).sha256
        except UnreadableImageError as exc:
            return item, exc

    # Reading and hashing files is I/O-bound: a few threads, results kept in dataset order.
    with (
        progress.task("reading images", dataset.n_images) as advance,
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="turnout-read") as pool,
    ):
        for item, found in pool.map(probe, dataset.items):
            if isinstance(found, UnreadableImageError):
                if strict:
                    raise found
                skipped.append(SkippedImage(item.id, str(item.path), found.reason))
            elif isinstance(found, str):
                hashes[item.id] = found
            advance(1)
    if not hashes:
        first = skipped[0]
        raise DatasetNotFoundError(
            f"none of the {dataset.n_images} images of {dataset.source} could be read "
            f"(first: {first.path}: {first.reason}); check where the images are"
        )
    return hashes, skipped


def _encode(
    encoder: DualEncoder | str,
    dataset: RetrievalDataset,
    hashes: dict[str, str],
    skipped: list[SkippedImage],
    strict: bool,
    options: EncoderOptions | None,
    cache: EmbeddingCache | None,
    progress: EvalProgress,
    model_cache_dir: Path | None,
) -> _Encoded:
    started = time.monotonic()
    if isinstance(encoder, str):
        progress.log(f"loading encoder {encoder}")
        model: DualEncoder = load_encoder(encoder, options, cache_dir=model_cache_dir)
    else:
        model = encoder
    load_s = time.monotonic() - started
    fingerprint = model.fingerprint
    identity = model.identity()
    if cache is not None:
        cache.remember_encoder(fingerprint, identity)
    gone = {s.id for s in skipped}
    items = [i for i in dataset.items if i.id not in gone]

    with progress.task(f"encoding images  {model.name}", len(items)) as advance:
        started = time.monotonic()
        images, n_images, fresh_skips = _encode_images(
            model, [(i, hashes[i.id]) for i in items], fingerprint, cache, strict, advance
        )
        images_s = time.monotonic() - started
    skipped.extend(fresh_skips)
    texts, _ = dataset.captions()
    unique = list(dict.fromkeys(texts))
    with progress.task(f"encoding texts   {model.name}", len(unique)) as advance:
        started = time.monotonic()
        text_vectors, n_texts = _encode_texts(model, unique, fingerprint, cache, advance)
        texts_s = time.monotonic() - started
    count = getattr(model, "count_truncated", None)
    truncated = int(count(unique)) if callable(count) else 0
    raw_options = getattr(model, "options", None)
    return _Encoded(
        name=model.name,
        identity=identity,
        fingerprint=fingerprint,
        options=asdict(raw_options)
        if is_dataclass(raw_options) and not isinstance(raw_options, type)
        else {},
        images=images,
        texts=text_vectors,
        truncated=truncated,
        timings=EncoderTimings(
            load_s=load_s,
            images_s=images_s,
            texts_s=texts_s,
            scoring_s=0.0,
            images_encoded=n_images,
            texts_encoded=n_texts,
            images_cached=len(items) - n_images - len(fresh_skips),
            texts_cached=len(unique) - n_texts,
        ),
    )


def _image_batches(
    encoder: DualEncoder, paths: list[Path]
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    batches = getattr(encoder, "embed_image_batches", None)
    if callable(batches):
        yield from batches(paths)
        return
    for start in range(0, len(paths), 64):
        yield start, encoder.embed_images(paths[start : start + 64])


def _encode_images(
    encoder: DualEncoder,
    items: list[tuple[ImageCaptions, str]],
    fingerprint: str,
    cache: EmbeddingCache | None,
    strict: bool,
    advance: Advance,
) -> tuple[Vectors, int, list[SkippedImage]]:
    """Vectors by content hash: from the cache, else encoded; skips unreadable images."""
    vectors = cache.get_many(fingerprint, "image", (h for _, h in items)) if cache else {}
    todo = [(item, h) for item, h in items if h not in vectors]
    advance(len(items) - len(todo))
    encoded = 0
    skipped: list[SkippedImage] = []
    while todo:
        try:
            for start, batch in _image_batches(encoder, [item.path for item, _ in todo]):
                pairs = [(todo[start + j][1], v) for j, v in enumerate(batch)]
                vectors.update(pairs)
                if cache is not None:
                    cache.put_many(fingerprint, "image", pairs)
                encoded += len(pairs)
                advance(len(pairs))
            todo = []
        except UnreadableImageError as exc:
            if strict or exc.index is None:
                raise
            bad, _ = todo[exc.index]
            skipped.append(SkippedImage(bad.id, str(bad.path), exc.reason))
            advance(1)
            todo = [(i, h) for n, (i, h) in enumerate(todo) if n != exc.index and h not in vectors]
    return vectors, encoded, skipped


def _encode_texts(
    encoder: DualEncoder,
    texts: list[str],
    fingerprint: str,
    cache: EmbeddingCache | None,
    advance: Advance,
) -> tuple[Vectors, int]:
    keys = {t: hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts}
    cached = cache.get_many(fingerprint, "text", keys.values()) if cache else {}
    vectors = {t: cached[keys[t]] for t in texts if keys[t] in cached}
    todo = [t for t in texts if t not in vectors]
    advance(len(texts) - len(todo))
    if todo:
        fresh = encoder.embed_texts(todo, progress=advance)
        vectors.update(zip(todo, fresh, strict=True))
        if cache is not None:
            cache.put_many(
                fingerprint, "text", [(keys[t], v) for t, v in zip(todo, fresh, strict=True)]
            )
    return vectors, len(todo)


def _score(
    encoded: _Encoded,
    kept: RetrievalDataset,
    hashes: dict[str, str],
    texts: list[str],
    owners: NDArray[np.int64],
    types: list[Any],
    ks: tuple[int, ...],
    resamples: int,
    seed: int,
    standard: str | None,
    progress: EvalProgress,
) -> EncoderResult:
    started = time.monotonic()
    with progress.task(f"scoring          {encoded.name}", len(texts) + kept.n_images) as advance:
        image_matrix = np.stack([encoded.images[hashes[item.id]] for item in kept.items])
        text_matrix = np.stack([encoded.texts[t] for t in texts])
        t2i = text_to_image_ranks(text_matrix, image_matrix, owners)
        advance(len(texts))
        i2t = image_to_text_ranks(image_matrix, text_matrix, owners)
        advance(kept.n_images)

    def direction(name: Any, ranks: NDArray[np.int64]) -> DirectionResult:
        rows = []
        for k in ks:
            low, high = bootstrap_ci(ranks < k, resamples=resamples, seed=seed)
            rows.append(Recall(k, recall_at_k(ranks, k), low, high))
        return DirectionResult(name, len(ranks), tuple(rows))

    groups = []
    masks = {g: np.array([g in t.groups for t in types], dtype=bool) for g in GROUPS}
    for name, ranks in (("text_to_image", t2i), ("image_to_text", i2t.per_caption)):
        for group, mask in masks.items():
            if mask.any():
                recall = {k: recall_at_k(ranks[mask], k) for k in ks}
                groups.append(GroupRecall(name, group, int(mask.sum()), recall))  # type: ignore[arg-type]
    model_id = str(encoded.identity.get("model_id", ""))
    timings = encoded.timings
    return EncoderResult(
        name=encoded.name,
        identity=encoded.identity,
        fingerprint=encoded.fingerprint,
        options=encoded.options,
        truncated_captions=encoded.truncated,
        text_to_image=direction("text_to_image", t2i),
        image_to_text=direction("image_to_text", i2t.best),
        by_caption_type=groups,
        timings=EncoderTimings(**{**asdict(timings), "scoring_s": time.monotonic() - started}),
        published=published_recall(model_id, standard) if standard else None,
        image_vectors=image_matrix,
        text_vectors=text_matrix,
        t2i_ranks=t2i,
        i2t_ranks=i2t.best,
        i2t_caption_ranks=i2t.per_caption,
    )


def _dataset_info(
    dataset: RetrievalDataset, kept: RetrievalDataset, hashes: dict[str, str]
) -> dict[str, Any]:
    """The dataset's identity: where it came from and a digest of its images and captions."""
    digest = hashlib.sha256()
    for item in kept.items:
        digest.update(f"{item.id}\0{hashes[item.id]}\0{'|'.join(item.captions)}\n".encode())
    return {
        "name": dataset.name,
        "split": dataset.split,
        "format": dataset.format,
        "source": dataset.source,
        "standard_split": dataset.standard,
        "limit": dataset.limit,
        "seed": dataset.seed,
        "images_listed": dataset.n_images,
        "images": kept.n_images,
        "captions": kept.n_captions,
        "fingerprint": digest.hexdigest()[:32],
    }


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("turnout", "torch", "transformers", "tokenizers", "numpy", "pillow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    found["machine"] = platform.machine()
    found["processor"] = platform.processor() or platform.machine()
    return found
