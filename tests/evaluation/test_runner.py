"""The evaluation runner end to end in Python: numbers, cache, skipped images, comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from turnout.core import InvalidImageError
from turnout.evaluation import evaluate_retrieval, write_report
from turnout.retrieval import (
    EmbeddingCache,
    EncoderOptions,
    ImageSource,
    Progress,
    load_dataset,
    load_encoder,
)

from ..retrieval.tiny import caption_folder, flickr_csv_folder, make_image
from .test_metrics import brute_i2t, brute_t2i

OPTIONS = EncoderOptions(batch_size=4, workers=2)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return caption_folder(tmp_path / "corpus", n_images=6, per_image=2)


def test_recall_matches_brute_force(corpus: Path, clip_dir: Path, siglip_dir: Path) -> None:
    dataset = load_dataset(str(corpus))
    report = evaluate_retrieval(
        dataset, [str(clip_dir), str(siglip_dir)], ks=(1, 2, 5), options=OPTIONS
    )
    texts, owners = dataset.captions()
    for result, path in zip(report.encoders, (clip_dir, siglip_dir), strict=True):
        encoder = load_encoder(str(path), OPTIONS)
        images = encoder.embed_images([i.path for i in dataset.items])
        t2i = np.array(brute_t2i(encoder.embed_texts(texts), images, owners))
        i2t = np.array(brute_i2t(images, encoder.embed_texts(texts), owners))
        assert result.text_to_image.n_queries == 12 and result.image_to_text.n_queries == 6
        for k in (1, 2, 5):
            assert result.text_to_image.at(k).value == pytest.approx(np.mean(t2i < k))  # type: ignore[union-attr]
            assert result.image_to_text.at(k).value == pytest.approx(np.mean(i2t < k))  # type: ignore[union-attr]
            r = result.text_to_image.at(k)
            assert r is not None and r.ci_low <= r.value <= r.ci_high
        groups = {(g.direction, g.group): g.n for g in result.by_caption_type}
        assert (
            groups.get(("text_to_image", "spatial"), 0)
            + groups.get(("text_to_image", "no spatial"), 0)
            == 12
        )
        assert result.published is None  # a folder of our own has no published figures


def test_rerun_hits_the_cache_and_a_changed_image_is_re_encoded(
    corpus: Path, clip_dir: Path, tmp_path: Path
) -> None:
    dataset = load_dataset(str(corpus))
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    first = evaluate_retrieval(dataset, [str(clip_dir)], options=OPTIONS, cache=cache)
    second = evaluate_retrieval(dataset, [str(clip_dir)], options=OPTIONS, cache=cache)
    t1, t2 = first.encoders[0].timings, second.encoders[0].timings
    assert (t1.images_encoded, t1.images_cached) == (6, 0)
    assert (t2.images_encoded, t2.texts_encoded, t2.images_cached) == (0, 0, 6)
    assert t2.texts_cached == t1.texts_encoded > 0
    assert first.encoders[0].text_to_image == second.encoders[0].text_to_image
    make_image(dataset.items[2].path, 4242)  # new pixels under the same name
    third = evaluate_retrieval(dataset, [str(clip_dir)], options=OPTIONS, cache=cache)
    timings = third.encoders[0].timings
    assert (timings.images_encoded, timings.texts_encoded) == (1, 0)


def test_unreadable_images_are_skipped_and_counted(corpus: Path, clip_dir: Path) -> None:
    (corpus / "garbage.png").write_bytes(b"this is not an image")
    whole = make_image(corpus / "truncated.png", 77, size=(64, 64)).read_bytes()
    (corpus / "truncated.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut
    with (corpus / "captions.csv").open("a") as fh:
        fh.write("garbage.png,a dog\nmissing.png,a cat\ntruncated.png,a tree\n")
    dataset = load_dataset(str(corpus))
    assert dataset.n_images == 9
    report = evaluate_retrieval(dataset, [str(clip_dir)], options=OPTIONS)
    reasons = {s.id: s.reason for s in report.skipped}
    assert set(reasons) == {"garbage.png", "missing.png", "truncated.png"}
    assert reasons["missing.png"] == "no such file"
    assert report.dataset["images"] == 6 and report.dataset["images_listed"] == 9
    assert report.to_dict()["dataset"]["skipped_images"] == 3
    assert report.encoders[0].image_to_text.n_queries == 6
    with pytest.raises(InvalidImageError, match=r"garbage\.png"):
        evaluate_retrieval(dataset, [str(clip_dir)], options=OPTIONS, strict=True)


class LookupEncoder:
    """A stand-in encoder with chosen vectors: shows the runner needs only the protocol."""

    name = "lookup"
    fingerprint = "lookup-v1"

    def __init__(self, images: dict[str, np.ndarray], texts: dict[str, np.ndarray]) -> None:
        self.images, self.texts = images, texts

    def identity(self) -> dict[str, Any]:
        return {"model_id": "openai/clip-vit-base-patch32", "revision": "test"}

    def embed_texts(self, texts: Any, *, progress: Progress | None = None) -> np.ndarray:
        return np.stack([self.texts[t] for t in texts])

    def embed_images(
        self, images: list[ImageSource], *, progress: Progress | None = None
    ) -> np.ndarray:
        return np.stack([self.images[Path(str(p)).name] for p in images])


def test_published_figures_sit_beside_a_standard_split(tmp_path: Path) -> None:
    root = flickr_csv_folder(tmp_path / "f30k", {"test": 1000, "train": 1}, per_image=1)
    dataset = load_dataset(f"flickr30k:{root}")
    assert dataset.standard == "flickr30k"
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(1000, 32)).astype(np.float32)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    images = {item.id: basis[n] for n, item in enumerate(dataset.items)}
    texts = {}
    for n, item in enumerate(dataset.items):
        # Every fourth caption describes the next image instead: a known miss.
        texts[item.captions[0]] = basis[(n + 1) % 1000] if n % 4 == 0 else basis[n]
    report = evaluate_retrieval(dataset, [LookupEncoder(images, texts)], bootstrap_resamples=200)
    result = report.encoders[0]
    assert result.text_to_image.at(1).value == pytest.approx(0.75)  # type: ignore[union-attr]
    comparison = result.to_dict()["published"]["text_to_image"]["1"]
    assert comparison["published"] == pytest.approx(0.588)
    assert comparison["difference"] == pytest.approx(0.75 - 0.588)

    files = write_report(report, tmp_path / "out", gallery_limit=10)
    data = json.loads(files.json.read_text())
    assert data["dataset"]["standard_split"] == "flickr30k"
    assert data["encoders"][0]["text_to_image"]["recall_at"][0]["recall"] == 0.75
    assert "ties" in data["metric"] and data["versions"]["numpy"]
    rows = files.csv.read_text().splitlines()
    assert rows[0].startswith("encoder,model_id,revision,direction,group,k")
    assert any(",text_to_image,all,1,1000,0.750000," in r for r in rows)
    assert "| published |" in files.markdown.read_text()
    html = files.gallery.read_text() if files.gallery else ""
    assert "250 of 1,000 captions missed the top 1, 10 shown" in html
    assert html.count("data:image/jpeg;base64,") >= 10
    assert "Recall by caption type" in html
