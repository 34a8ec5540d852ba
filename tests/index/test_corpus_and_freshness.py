"""Corpora (images with captions, PDFs), bad input, freshness and crash safety."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from turnout.retrieval.index import (
    CollectionMismatchError,
    UnusableSourceError,
    create_collection,
    freshness,
    index_sources,
    open_collection,
    refresh,
    search,
)

from .corpus import (
    CAPTIONS,
    PHOTOS,
    bomb_png,
    encrypted_pdf,
    make_pdf,
    photo_folder,
    truncated_jpeg,
)
from .helpers import settings_for


class Counting:
    """Wraps an encoder and counts what it encodes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.images = 0
        self.texts = 0
        self.name, self.fingerprint, self.dim = inner.name, inner.fingerprint, inner.dim

    def embed_images(self, images: Any, **kw: Any) -> Any:
        self.images += len(images)
        return self.inner.embed_images(images, **kw)

    def embed_texts(self, texts: Any, **kw: Any) -> Any:
        self.texts += len(texts)
        return self.inner.embed_texts(texts, **kw)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    root = photo_folder(tmp_path / "photos")
    make_pdf(root / "docs" / "report.pdf", ["Quarterly revenue grew", "A cat on a mat"])
    return root


def test_folder_and_pdf_are_indexed_with_provenance(
    tmp_path: Path, corpus: Path, encoder: Any
) -> None:
    settings = settings_for(tmp_path, "edge")
    with create_collection(settings, "c", encoder.dim, encoder=encoder) as c:
        report = index_sources(c, encoder, [corpus], tenant="acme", batch_size=4)
        # 6 photos + 6 caption texts + 2 pages + 2 page texts
        assert report.items_written == 16 and report.skipped == []
        pages = c.count("acme", {"modality": "page"})
        assert pages == 2
        hits = search(c, encoder, tenant="acme", text="A cat on a mat", k=16, modality="page")
        page = {h.item.source.page: h.item for h in hits}
        assert page[2].text == "A cat on a mat" and page[1].text == "Quarterly revenue grew"
        assert page[2].source.source == str((corpus / "docs" / "report.pdf").resolve())
        # Image-to-image: a photo finds itself first.
        hits = search(c, encoder, tenant="acme", image=corpus / "coffee.png", k=1, modality="image")
        assert hits[0].item.source.source.endswith("coffee.png")
        assert hits[0].item.text == CAPTIONS["coffee"]
        # Image-to-text returns caption items.
        hits = search(c, encoder, tenant="acme", image=corpus / "coffee.png", k=3, modality="text")
        assert {h.item.modality for h in hits} == {"text"}


def test_bad_files_are_named_and_skipped(tmp_path: Path, encoder: Any) -> None:
    root = photo_folder(tmp_path / "photos", names=PHOTOS[:2])
    bomb_png(root / "bomb.png")
    truncated_jpeg(root / "broken.jpg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    (root / "fake.png").write_bytes(b"GIF89a not really")
    (root / "scan.tiff").write_bytes(b"II*\x00")
    encrypted_pdf(root / "locked.pdf")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    outside = tmp_path / "outside.png"
    outside.write_bytes((root / "coffee.png").read_bytes())
    os.symlink(outside, root / "escape.png")
    settings = settings_for(tmp_path, "faiss")
    with create_collection(settings, "c", encoder.dim, encoder=encoder) as c:
        report = index_sources(c, encoder, [root], tenant="t", max_pixels=10_000_000)
        reasons = {Path(p).name: r for p, r in report.skipped}
        assert "decompression bomb" in reasons["bomb.png"]
        assert "truncated" in reasons["broken.jpg"]
        assert "empty file" in reasons["empty.png"]
        assert "unsupported format '.txt'" in reasons["notes.txt"]
        assert "unsupported format '.tiff'" in reasons["scan.tiff"]
        assert "corrupt" in reasons["fake.png"]
        assert "encrypted PDF" in reasons["locked.pdf"]
        assert "not a readable PDF" in reasons["broken.pdf"]
        assert "outside" in reasons["escape.png"]
        assert c.count("t", {"modality": "image"}) == 2  # the two good photos only
        with pytest.raises(UnusableSourceError, match=r"bomb\.png"):
            index_sources(c, encoder, [root / "bomb.png"], tenant="t", strict=True)


def test_a_different_encoder_is_refused(
    tmp_path: Path, corpus: Path, encoder: Any, other_clip_dir: Path
) -> None:
    from turnout.retrieval import load_encoder

    other = load_encoder(str(other_clip_dir))
    settings = settings_for(tmp_path, "edge")
    with create_collection(settings, "c", encoder.dim, encoder=encoder) as c:
        with pytest.raises(CollectionMismatchError, match="fingerprint"):
            search(c, other, tenant="t", text="a cat")
        with pytest.raises(CollectionMismatchError, match="fingerprint"):
            index_sources(c, other, [corpus], tenant="t")


def test_freshness_add_change_delete_and_slo(tmp_path: Path, encoder: Any) -> None:
    root = photo_folder(tmp_path / "photos", names=PHOTOS[:3])
    settings = settings_for(tmp_path, "edge")
    counting = Counting(encoder)
    with create_collection(settings, "c", encoder.dim, encoder=encoder, freshness_slo_s=3600) as c:
        index_sources(c, counting, [root], tenant="t", with_text=False)
        status = freshness(c)
        assert (status.items, status.pending, status.slo_ok) == (3, 0, True)
        # Changes two hours old: one added, one changed, one deleted.
        two_hours_ago = time.time() - 7200
        added = root / "extra.png"
        (root / "chelsea.webp").rename(added)  # chelsea.webp deleted, extra.png added
        (root / "coffee.png").write_bytes((root / "astronaut.jpg").read_bytes())
        for path in (added, root / "coffee.png", root):
            os.utime(path, (two_hours_ago, two_hours_ago))
        status = freshness(c)
        assert (status.pending_new, status.pending_changed, status.pending_deleted) == (1, 1, 1)
        assert status.oldest_pending_age_s is not None and status.oldest_pending_age_s > 7000
        assert not status.slo_ok
        # A touch without a change is not pending, and is not re-encoded.
        os.utime(root / "astronaut.jpg", None)
        before = counting.images
        refresh(c, counting, with_text=False)
        assert counting.images - before == 2  # the new and the changed file only
        status = freshness(c)
        assert (status.items, status.pending, status.slo_ok) == (3, 0, True)
        ids = {
            i.id.rsplit("/", 1)[1] for i in c.get("t", [str(p.resolve()) for p in root.iterdir()])
        }
        assert ids == {"astronaut.jpg", "coffee.png", "extra.png"}


def test_an_interrupted_run_resumes_without_re_encoding(tmp_path: Path, encoder: Any) -> None:
    root = photo_folder(tmp_path / "photos")
    settings = settings_for(tmp_path, "faiss")

    class Interrupting(Counting):
        def embed_images(self, images: Any, **kw: Any) -> Any:
            if self.images >= 4:
                raise KeyboardInterrupt
            return super().embed_images(images, **kw)

    with create_collection(settings, "c", encoder.dim, encoder=encoder) as c:
        flaky = Interrupting(encoder)
        with pytest.raises(KeyboardInterrupt):
            index_sources(c, flaky, [root], tenant="t", batch_size=2, with_text=False)
        assert c.count("t") == 4  # the finished batches were kept
        counting = Counting(encoder)
        index_sources(c, counting, [root], tenant="t", batch_size=2, with_text=False)
        assert counting.images == 2 and c.count("t") == 6


CRASH = """
import os, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.index.helpers import settings_for
from turnout.retrieval import load_encoder
from turnout.retrieval.index import open_collection, index_sources
settings = settings_for(Path({tmp!r}), {backend!r})
encoder = load_encoder({model!r})
c = open_collection(settings, "c")
real = c.backend.upsert
calls = []
def upsert(points):
    calls.append(1)
    if len(calls) == 2:
        real(points[: len(points) // 2])   # half the batch reaches the backend...
        os._exit(9)                         # ...and the process dies
    real(points)
c.backend.upsert = upsert
index_sources(c, encoder, [{root!r}], tenant="t", batch_size=2, with_text=False)
"""


@pytest.mark.parametrize("backend", ["edge", "faiss"])
def test_a_crash_mid_batch_leaves_the_index_as_before_the_batch(
    tmp_path: Path, encoder: Any, clip_dir: Path, backend: str
) -> None:
    root = photo_folder(tmp_path / "photos")
    settings = settings_for(tmp_path, backend)
    create_collection(settings, "c", encoder.dim, encoder=encoder).close()
    script = CRASH.format(
        repo=str(Path(__file__).parents[2]),
        tmp=str(tmp_path),
        backend=backend,
        model=str(clip_dir),
        root=str(root),
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    with open_collection(settings, "c") as c:
        # Batch one (2 photos) is in; batch two's half-written points were undone.
        assert c.count("t") == 2
        assert c.backend.count({}) == 2
        report = index_sources(c, encoder, [root], tenant="t", batch_size=2, with_text=False)
        assert report.sources_new == 4 and report.sources_unchanged == 2
        assert c.count("t") == 6
