"""Indexing corpora: plan what changed, encode in batches, write each batch all-or-nothing.

`plan` compares the files under each root with the manifest (size and mtime first, the
content hash only when those differ). `index_sources` and `refresh` index what is new or
changed and remove what was deleted; `freshness` reports what is pending and whether the
collection's SLO holds. A run stopped part-way keeps every batch it wrote: the next run
encodes only what is still missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from turnout.core import InvalidInputError

from ._collection import Collection, check_tenant
from ._corpus import SourceFile, Unit, file_hash, scan_root, units
from ._errors import UnusableSourceError
from ._manifest import PageRecord, SourceRecord
from ._types import Item

Progress = Callable[[int, int], None]
"""Called with (sources finished, items encoded) since the last call."""


@dataclass
class Change:
    path: str
    root: str
    what: str  # "new", "changed" or "deleted"
    since: float  # when the change happened (epoch seconds; best known)
    source: SourceFile | None = None
    content_hash: str | None = None
    size: int = 0
    mtime_ns: int = 0


@dataclass
class Plan:
    tenant: str
    changes: list[Change] = field(default_factory=list)
    touched: list[SourceRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class IngestReport:
    collection: str
    tenant: str
    sources_new: int = 0
    sources_changed: int = 0
    sources_deleted: int = 0
    sources_unchanged: int = 0
    items_written: int = 0
    items_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    pages_text_layer: int = 0
    pages_ocr: int = 0
    pages_low_confidence: int = 0
    pages_without_text: int = 0
    warnings: list[str] = field(default_factory=list)

    def count_pages(self, pages: Sequence[PageRecord]) -> None:
        for page in pages:
            self.pages_text_layer += page.text_source == "text-layer"
            self.pages_ocr += page.text_source == "ocr"
            self.pages_low_confidence += page.low_confidence
            self.pages_without_text += page.text_source == "none"
            if page.text_source == "none" and page.note and "OCR skipped" in page.note:
                reason = page.note[page.note.index("OCR skipped") :]
                if reason not in self.warnings:
                    self.warnings.append(reason)

    @property
    def items_per_s(self) -> float:
        return self.items_written / self.seconds if self.seconds > 0 else 0.0

    def merge(self, other: IngestReport) -> None:
        for name in (
            "sources_new",
            "sources_changed",
            "sources_deleted",
            "sources_unchanged",
            "items_written",
            "items_removed",
            "seconds",
            "pages_text_layer",
            "pages_ocr",
            "pages_low_confidence",
            "pages_without_text",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped += other.skipped
        self.warnings += [w for w in other.warnings if w not in self.warnings]


def plan(collection: Collection, tenant: str, roots: Sequence[Path | str]) -> Plan:
    """What indexing `roots` for `tenant` would do: new, changed and deleted sources."""
    out = Plan(tenant)
    manifest = collection.manifest
    last_refresh = manifest.get_meta(f"last_refresh:{tenant}") or 0.0
    for root in roots:
        path = Path(root).expanduser()
        scan = scan_root(path)
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        known = manifest.sources(tenant, key)
        out.skipped += scan.skipped
        seen = set()
        for source in scan.files:
            name = str(source.path)
            seen.add(name)
            try:
                stat = source.path.stat()
            except OSError as exc:
                out.skipped.append((name, f"cannot read ({exc.strerror or exc})"))
                continue
            record = known.get(name)
            same_stat = record is not None and (record.size, record.mtime_ns) == (
                stat.st_size,
                stat.st_mtime_ns,
            )
            if record is not None and same_stat and record.extra == source.extra:
                out.unchanged += 1
                continue
            try:
                digest = file_hash(source.path)
            except UnusableSourceError as exc:
                out.skipped.append((exc.path, exc.reason))
                continue
            if (
                record is not None
                and record.content_hash == digest
                and record.extra == source.extra
            ):
                out.unchanged += 1
                out.touched.append(_record(record, stat.st_size, stat.st_mtime_ns))
                continue
            out.changes.append(
                Change(
                    name,
                    key,
                    "changed" if record else "new",
                    stat.st_mtime_ns / 1e9,
                    source,
                    digest,
                    stat.st_size,
                    stat.st_mtime_ns,
                )
            )
        for name in sorted(set(known) - seen):
            parent = Path(name).parent
            # A folder's mtime moves when an entry is removed: the best time of a deletion.
            since = parent.stat().st_mtime if parent.exists() else last_refresh
            out.changes.append(Change(name, key, "deleted", since))
    return out


def _record(record: SourceRecord, size: int, mtime_ns: int) -> SourceRecord:
    from dataclasses import replace

    return replace(record, size=size, mtime_ns=mtime_ns)


def index_sources(
    collection: Collection,
    encoder: Any,
    roots: Sequence[Path | str],
    *,
    tenant: str,
    batch_size: int = 32,
    max_pixels: int = 64_000_000,
    pdf_scale: float = 1.0,
    with_text: bool = True,
    strict: bool = False,
    progress: Progress | None = None,
    remember: bool = True,
    text_encoder: Any = None,
) -> IngestReport:
    """Index (or re-index) folders and files for one tenant; see the module docstring.

    A document collection also needs its text encoder, unless `encoder` is that encoder
    (a text-only collection).
    """
    check_tenant(tenant)
    if not roots:
        raise InvalidInputError("give at least one folder or file to index")
    collection.check_encoder(encoder)
    encoders = _Encoders(collection, encoder, text_encoder)
    for root in roots:
        if not Path(root).expanduser().exists():
            raise InvalidInputError(f"{root}: no such file or folder")
    started = time.monotonic()
    manifest = collection.manifest
    if remember:
        for root in roots:
            manifest.add_root(tenant, str(Path(root).expanduser().resolve()), time.time())
    todo = plan(collection, tenant, roots)
    report = IngestReport(collection.name, tenant, skipped=list(todo.skipped))
    report.sources_unchanged = todo.unchanged
    if strict and todo.skipped:
        path, reason = todo.skipped[0]
        raise UnusableSourceError(path, reason)
    manifest.touch(todo.touched)
    writer = _BatchWriter(collection, tenant, batch_size, report)
    deleted = [c for c in todo.changes if c.what == "deleted"]
    if deleted:
        writer.delete_sources(deleted)
    try:
        for change in todo.changes:
            if change.what == "deleted":
                continue
            assert change.source is not None and change.content_hash is not None
            try:
                found = _encode_source(
                    encoders, change, tenant, batch_size, max_pixels, pdf_scale, with_text, progress
                )
            except UnusableSourceError as exc:
                if strict:
                    raise
                report.skipped.append((exc.path, exc.reason))
                writer.add(change, None, failed=exc.reason)
                continue
            writer.add(change, found)
            if change.what == "new":
                report.sources_new += 1
            else:
                report.sources_changed += 1
            if progress:
                progress(1, 0)
    finally:
        # Ctrl-C or an error: keep what was finished; the rest is redone by the next run.
        writer.write()
    if report.sources_new or report.sources_changed or report.sources_deleted:
        collection.optimize()  # the HNSW graph for what was written (Qdrant Edge)
    manifest.set_meta(f"last_refresh:{tenant}", time.time())
    report.seconds = time.monotonic() - started
    return report


class _Encoders:
    """The encoders a collection's items need: its own, and a document collection's text one."""

    def __init__(self, collection: Collection, encoder: Any, text_encoder: Any) -> None:
        self.encoder = encoder
        self.documents = collection.spec.documents
        self.text_encoder = None
        if self.documents is not None and self.documents.text_dim is not None:
            if text_encoder is None:
                raise InvalidInputError(
                    f"collection {collection.name!r} embeds passages with text encoder "
                    f"{self.documents.text_encoder!r}: pass it as text_encoder"
                )
            collection.check_text_encoder(text_encoder)
            self.text_encoder = text_encoder
        elif self.documents is not None:
            collection.check_text_encoder(encoder)


@dataclass
class Encoded:
    """One source's items, their vectors, text vectors (passages) and page records."""

    items: list[Item] = field(default_factory=list)
    vectors: list[NDArray[np.float32]] = field(default_factory=list)
    text_vectors: list[NDArray[np.float32] | None] = field(default_factory=list)
    pages: list[PageRecord] = field(default_factory=list)


def _encode_source(
    encoders: _Encoders,
    change: Change,
    tenant: str,
    batch_size: int,
    max_pixels: int,
    pdf_scale: float,
    with_text: bool,
    progress: Progress | None,
) -> Encoded:
    assert change.source is not None and change.content_hash is not None
    encoder, text_encoder = encoders.encoder, encoders.text_encoder
    out = Encoded()
    chunk: list[Unit] = []

    def run() -> None:
        images = [u for u in chunk if u.image is not None]
        texts = [u for u in chunk if u.image is None]
        by_item: dict[str, NDArray[np.float32]] = {}
        by_text: dict[str, NDArray[np.float32]] = {}
        if images:
            embedded = encoder.embed_images([u.image for u in images])
            by_item |= {u.item.id: v for u, v in zip(images, embedded, strict=True)}
        if texts:
            strings = [u.text or "" for u in texts]
            embedded = encoder.embed_texts(strings)
            by_item |= {u.item.id: v for u, v in zip(texts, embedded, strict=True)}
            if text_encoder is not None:
                embedded = text_encoder.embed_texts(strings)
                by_text |= {u.item.id: v for u, v in zip(texts, embedded, strict=True)}
        for unit in chunk:
            out.items.append(unit.item)
            out.vectors.append(by_item[unit.item.id])
            out.text_vectors.append(by_text.get(unit.item.id))
        if progress:
            progress(0, len(chunk))
        chunk.clear()

    for unit in units(
        change.source,
        tenant,
        change.content_hash,
        max_pixels=max_pixels,
        pdf_scale=pdf_scale,
        with_text=with_text,
        documents=encoders.documents,
    ):
        if isinstance(unit, PageRecord):
            out.pages.append(unit)
            continue
        chunk.append(unit)
        if len(chunk) >= batch_size:
            run()
    if chunk:
        run()
    return out


class _BatchWriter:
    """Collects finished sources and writes them as one all-or-nothing batch."""

    def __init__(
        self, collection: Collection, tenant: str, batch_size: int, report: IngestReport
    ) -> None:
        self.collection = collection
        self.tenant = tenant
        self.batch_size = batch_size
        self.report = report
        self.items: list[Item] = []
        self.vectors: list[NDArray[np.float32]] = []
        self.text_vectors: list[NDArray[np.float32] | None] = []
        self.drop: list[str] = []
        self.sources: list[SourceRecord] = []
        self.pages: list[PageRecord] = []

    def add(self, change: Change, encoded: Encoded | None, *, failed: str | None = None) -> None:
        found = encoded or Encoded()
        new_ids = {i.id for i in found.items}
        old = self.collection.manifest.items_of(self.tenant, change.path)
        self.drop += [item_id for item_id in old if item_id not in new_ids]
        self.items += found.items
        self.vectors += found.vectors
        self.text_vectors += found.text_vectors
        self.pages += found.pages
        self.report.count_pages(found.pages)
        self.sources.append(
            SourceRecord(
                self.tenant,
                change.path,
                change.root,
                change.content_hash or "",
                change.size,
                change.mtime_ns,
                change.source.extra if change.source else "",
                "failed" if failed else "indexed",
                failed,
                time.time(),
            )
        )
        if len(self.items) >= self.batch_size:
            self.write()

    def write(self) -> None:
        if not self.sources and not self.drop:
            return
        vectors = np.stack(self.vectors) if self.vectors else None
        separate = any(v is not None for v in self.text_vectors)
        self.collection.write_batch(
            self.tenant,
            self.items,
            vectors,
            text_vectors=self.text_vectors if separate else None,
            drop=self.drop,
            sources=self.sources,
            pages=self.pages,
        )
        self.report.items_written += len(self.items)
        self.report.items_removed += len(self.drop)
        self.items, self.vectors, self.text_vectors = [], [], []
        self.drop, self.sources, self.pages = [], [], []

    def delete_sources(self, changes: list[Change]) -> None:
        drop: list[str] = []
        for change in changes:
            drop += list(self.collection.manifest.items_of(self.tenant, change.path))
        self.collection.write_batch(
            self.tenant, [], None, drop=drop, forget_sources=[c.path for c in changes]
        )
        self.report.items_removed += len(drop)
        self.report.sources_deleted += len(changes)


def refresh(
    collection: Collection,
    encoder: Any,
    *,
    tenant: str | None = None,
    **options: Any,
) -> list[IngestReport]:
    """Re-scan every root `turnout index add` was given (for one tenant or all of them)."""
    by_tenant: dict[str, list[str]] = {}
    for owner, root in collection.manifest.roots(tenant):
        by_tenant.setdefault(owner, []).append(root)
    reports = []
    for owner, roots in by_tenant.items():
        present = [r for r in roots if Path(r).exists()]
        gone = [r for r in roots if not Path(r).exists()]
        report = IngestReport(collection.name, owner)
        if present:
            report = index_sources(
                collection, encoder, present, tenant=owner, remember=False, **options
            )
        if gone:
            # A root that vanished: everything indexed from it was deleted at the source.
            todo = plan(collection, owner, gone)
            writer = _BatchWriter(collection, owner, 1, report)
            deleted = [c for c in todo.changes if c.what == "deleted"]
            if deleted:
                writer.delete_sources(deleted)
            collection.manifest.set_meta(f"last_refresh:{owner}", time.time())
        reports.append(report)
    return reports


@dataclass
class Freshness:
    collection: str
    tenant: str | None
    items: int
    bytes: int
    last_refresh: float | None
    pending: int
    pending_new: int
    pending_changed: int
    pending_deleted: int
    oldest_pending_age_s: float | None
    slo_s: float | None
    failed: int
    skipped: int
    pages: int = 0
    ocr_pages: int = 0
    low_confidence_pages: int = 0
    pages_without_text: int = 0

    @property
    def slo_ok(self) -> bool:
        if self.slo_s is None or self.oldest_pending_age_s is None:
            return True
        return self.oldest_pending_age_s <= self.slo_s

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "slo_ok": self.slo_ok}


def freshness(
    collection: Collection, *, tenant: str | None = None, now: float | None = None
) -> Freshness:
    """Items, bytes, last refresh, what is pending at the sources, and whether the SLO holds."""
    current = time.time() if now is None else now
    by_tenant: dict[str, list[str]] = {}
    for owner, root in collection.manifest.roots(tenant):
        by_tenant.setdefault(owner, []).append(root)
    changes: list[Change] = []
    skipped = 0
    refreshed: list[float] = []
    for owner, roots in by_tenant.items():
        todo = plan(collection, owner, roots)
        changes += todo.changes
        skipped += len(todo.skipped)
        stamp = collection.manifest.get_meta(f"last_refresh:{owner}")
        if stamp:
            refreshed.append(float(stamp))
    oldest = min((c.since for c in changes), default=None)
    counts = collection.manifest.page_counts(tenant)
    return Freshness(
        collection=collection.name,
        tenant=tenant,
        items=collection.count(tenant),
        bytes=collection.size_bytes(),
        last_refresh=min(refreshed) if refreshed else None,
        pending=len(changes),
        pending_new=sum(c.what == "new" for c in changes),
        pending_changed=sum(c.what == "changed" for c in changes),
        pending_deleted=sum(c.what == "deleted" for c in changes),
        oldest_pending_age_s=max(0.0, current - oldest) if oldest is not None else None,
        slo_s=collection.spec.freshness_slo_s,
        failed=len(collection.manifest.failed(tenant)),
        skipped=skipped,
        pages=counts.pages,
        ocr_pages=counts.ocr,
        low_confidence_pages=counts.low_confidence,
        pages_without_text=counts.without_text,
    )


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `1h`, `2d` or plain seconds."""
    units_s = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    try:
        scale = units_s.get(raw[-1:], 1)
        value = float(raw[:-1] if raw[-1:] in units_s else raw) * scale
    except ValueError:
        value = -1
    if not value > 0:
        raise InvalidInputError(f"duration {text!r}: expected e.g. 90s, 15m, 1h or 2d")
    return value
