"""Encoders through the public spec path: shapes, normalisation, determinism, fidelity."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from turnout.core import ConfigError, InvalidImageError
from turnout.retrieval import (
    DualEncoder,
    EncoderLoadError,
    EncoderOptions,
    UnreadableImageError,
    load_encoder,
)

from .tiny import TEXT_LIMIT, make_image

CAPTIONS = ["a dog runs on the grass", "two cats sit next to a tree", "a man", "red ball"]


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return [make_image(tmp_path / f"{i}.png", i, size=(40 + 7 * i, 36 + 3 * i)) for i in range(5)]


def test_vectors_are_float32_unit_rows(model_dir: Path, images: list[Path]) -> None:
    encoder = load_encoder(str(model_dir), EncoderOptions(batch_size=2))
    assert isinstance(encoder, DualEncoder)
    img = encoder.embed_images(images)
    txt = encoder.embed_texts(CAPTIONS)
    assert img.dtype == np.float32 and txt.dtype == np.float32
    assert img.shape == (5, encoder.dim) and txt.shape == (4, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(r, 4)) for r in img}) == 5  # distinct images, distinct vectors


def test_family_comes_from_the_checkpoint(clip_dir: Path, siglip_dir: Path) -> None:
    assert load_encoder(str(clip_dir)).family.name == "clip"
    siglip = load_encoder(str(siglip_dir))
    assert siglip.family.name == "siglip"
    assert siglip.family.text_padding == "max_length"
    assert siglip.max_text_length == TEXT_LIMIT


def test_same_vectors_whatever_the_batching_or_threads(model_dir: Path, images: list[Path]) -> None:
    one = load_encoder(str(model_dir), EncoderOptions(batch_size=1, workers=0))
    many = load_encoder(str(model_dir), EncoderOptions(batch_size=4, workers=3))
    np.testing.assert_allclose(one.embed_images(images), many.embed_images(images), atol=1e-5)
    np.testing.assert_allclose(one.embed_texts(CAPTIONS), many.embed_texts(CAPTIONS), atol=1e-5)
    np.testing.assert_array_equal(many.embed_images(images), many.embed_images(images))


def test_matches_the_plain_processor_then_model_loop(model_dir: Path, images: list[Path]) -> None:
    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    encoder = load_encoder(str(model_dir), EncoderOptions(batch_size=3))
    model = AutoModel.from_pretrained(model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pixels = processor(images=[Image.open(p).convert("RGB") for p in images], return_tensors="pt")
    padding = "max_length" if encoder.family.name == "siglip" else True
    tokens = tokenizer(
        CAPTIONS, padding=padding, truncation=True, max_length=TEXT_LIMIT, return_tensors="pt"
    )
    with torch.no_grad():
        want_img = torch.nn.functional.normalize(model.get_image_features(**pixels).pooler_output)
        want_txt = torch.nn.functional.normalize(model.get_text_features(**tokens).pooler_output)
    np.testing.assert_allclose(encoder.embed_images(images), want_img.numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder.embed_texts(CAPTIONS), want_txt.numpy(), atol=1e-5)


def test_paths_bytes_and_pil_images_agree(clip_dir: Path, images: list[Path]) -> None:
    encoder = load_encoder(str(clip_dir))
    as_bytes = [p.read_bytes() for p in images]
    as_pil = [Image.open(io.BytesIO(b)) for b in as_bytes]
    by_path = encoder.embed_images(images)
    np.testing.assert_array_equal(by_path, encoder.embed_images(as_bytes))
    np.testing.assert_array_equal(by_path, encoder.embed_images(as_pil))


def test_long_captions_are_truncated_and_counted(model_dir: Path) -> None:
    encoder = load_encoder(str(model_dir))
    long = " ".join(["dog"] * (TEXT_LIMIT * 3))
    vectors = encoder.embed_texts([long, "a cat", long + " cat"])
    assert vectors.shape[0] == 3 and np.isfinite(vectors).all()
    assert encoder.truncated_texts == 2
    assert encoder.count_truncated(["a cat", long]) == 1
    # Truncation keeps the first tokens: a different tail past the limit changes nothing.
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)


def test_unreadable_image_names_its_index_after_earlier_batches(
    clip_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    encoder = load_encoder(str(clip_dir), EncoderOptions(batch_size=2))
    done = []
    with pytest.raises(UnreadableImageError) as caught:
        for start, vectors in encoder.embed_image_batches([*images[:4], broken, images[4]]):
            done.append((start, len(vectors)))
    assert caught.value.index == 4 and str(broken) in str(caught.value)
    assert isinstance(caught.value, InvalidImageError)
    assert done == [(0, 2), (2, 2)]


def test_identity_tracks_revision_and_preprocessing(clip_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(clip_dir, tmp_path / "copy"))
    before = load_encoder(str(copy))
    assert before.identity()["family"] == "clip"
    assert before.identity()["model_id"] == str(copy.resolve())
    config = json.loads((copy / "preprocessor_config.json").read_text())
    config["image_mean"] = [0.5, 0.5, 0.5]
    (copy / "preprocessor_config.json").write_text(json.dumps(config))
    after = load_encoder(str(copy))
    assert after.fingerprint != before.fingerprint
    assert after.identity()["revision"] != before.identity()["revision"]


def test_a_model_that_is_not_a_dual_encoder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EncoderLoadError, match=r"bert.*not an image-text dual encoder"):
        load_encoder(str(tmp_path))


def test_broken_weights_say_which_folder(clip_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(clip_dir, tmp_path / "copy"))
    for weights in copy.glob("*.safetensors"):
        weights.write_bytes(b"garbage")
    with pytest.raises(EncoderLoadError, match="cannot load from") as caught:
        load_encoder(str(copy))
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (EncoderOptions(device="cuda"), "cuda"),
        (EncoderOptions(dtype="float64"), "dtype"),  # type: ignore[arg-type]
        (EncoderOptions(batch_size=0), "batch size"),
    ],
)
def test_bad_options_are_config_errors(
    clip_dir: Path, options: EncoderOptions, message: str
) -> None:
    import torch

    if message == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EncoderLoadError, match=message):
        load_encoder(str(clip_dir), options)
