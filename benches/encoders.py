"""Encoder throughput: turnout's encoder path against a plain loop on the same model and inputs.

The plain loop is what a model card shows: open the batch's images, run the model's
processor, then the model, batch by batch. turnout's path decodes and preprocesses on
worker threads while the model runs, and sorts captions by length before batching.
Both run in the same process, alternately, on the same model weights and files, and
their embeddings must agree to 1e-4.

The model is randomly initialised with a real architecture (ViT-B/32-shaped CLIP by
default): nothing is downloaded, and speed does not depend on the weights' values.
Images are photographs from scikit-image's bundled data, saved as Flickr-sized JPEGs.

    .venv/bin/python benches/encoders.py [--model vit-b32|tiny] [--images 96] [--write FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry",
    "hubble_deep_field", "colorwheel", "retina", "horse", "camera", "coins",
)  # fmt: skip
SUBJECTS = (
    "man", "woman", "child", "dog", "girl", "boy", "cat", "couple", "group", "worker", "player",
)  # fmt: skip
ACTIONS = (
    "is riding a bicycle down", "sits on a bench in", "plays with a ball near",
    "walks along", "stands next to a red car in", "is jumping over a fence by",
    "looks at the camera in", "runs through",
)  # fmt: skip
PLACES = (
    "the street", "a park", "the snow", "a crowded market", "the beach at sunset",
    "a small kitchen", "the grass behind a white house", "a busy city square at night",
)  # fmt: skip
SHAPES = {
    # ViT-B/32 CLIP: 12-layer 768-wide vision tower, 12-layer 512-wide text tower.
    "vit-b32": ({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12, "image_size": 224, "patch_size": 32},
                {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                 "num_attention_heads": 8}, 512, 224),
    "tiny": ({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
             {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 2}, 64, 64),
}  # fmt: skip


def captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = f"A {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"
        if rng.random() < 0.3:
            text += f" while a {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"
        out.append(text + " .")
    return out


def write_photos(folder: Path, n: int) -> list[Path]:
    """`n` distinct JPEGs about Flickr30K's size (500 px on the long side)."""
    import skimage.data

    bases = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for i in range(n):
        image = bases[i % len(bases)]
        variant = i // len(bases)
        if variant % 2:
            image = ImageOps.mirror(image)
        w, h = image.size
        cut = (variant * 7) % 20 / 100
        image = image.crop((int(w * cut / 2), int(h * cut / 3), w - int(w * cut / 2), h))
        image.thumbnail((500, 500), Image.Resampling.BICUBIC)
        path = folder / f"photo{i:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def build_model(folder: Path, shape: str, texts: list[str]) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    from turnout.retrieval.standin import word_tokenizer, words_of

    vision, text, projection, size = SHAPES[shape]
    words = words_of(" ".join(texts))
    word_tokenizer(words, 77, with_mask=True).save_pretrained(folder)
    torch.manual_seed(0)
    text_config = text | {"vocab_size": 49408, "max_position_embeddings": 77, "eos_token_id": 3}
    config = CLIPConfig(text_config=text_config, vision_config=vision, projection_dim=projection)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    ).save_pretrained(folder)
    return folder


def plain_images(model: Any, processor: Any, paths: list[Path], batch: int) -> np.ndarray:
    import torch

    out = []
    for start in range(0, len(paths), batch):
        images = [Image.open(p).convert("RGB") for p in paths[start : start + batch]]
        inputs = processor(images=images, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            features = model.get_image_features(**inputs).pooler_output
        out.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
    return np.concatenate(out)


def plain_texts(model: Any, tokenizer: Any, texts: list[str], batch: int) -> np.ndarray:
    import torch

    out = []
    for start in range(0, len(texts), batch):
        inputs = tokenizer(
            texts[start : start + batch], padding=True, truncation=True, max_length=77,
            return_tensors="pt",
        ).to(model.device)  # fmt: skip
        with torch.inference_mode():
            features = model.get_text_features(**inputs).pooler_output
        out.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
    return np.concatenate(out)


def timed(run: Callable[[], np.ndarray], repeats: int) -> tuple[list[float], np.ndarray]:
    seconds, result = [], np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(SHAPES), default="vit-b32")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--captions", type=int, default=480)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu")
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()

    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
    from transformers.utils import logging

    from turnout.retrieval import EncoderOptions, load_encoder

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    texts = captions(args.captions)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp), args.images)
        folder = build_model(Path(tmp) / "model", args.model, texts)
        model = AutoModel.from_pretrained(folder).to(args.device).eval()
        processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        workers = {} if args.workers is None else {"workers": args.workers}
        options = EncoderOptions(
            device=args.device, batch_size=args.batch_size, streams=args.streams, **workers
        )
        encoder = load_encoder(str(folder), options)
        b = args.batch_size
        # One untimed pass each: first-call allocations and lazy initialisation.
        plain_images(model, processor, paths[:b], b)
        encoder.embed_images(paths[:b])
        rows = []
        for label, n, plain, ours in (
            ("images", len(paths), lambda: plain_images(model, processor, paths, b),
             lambda: encoder.embed_images(paths)),
            ("texts", len(texts), lambda: plain_texts(model, tokenizer, texts, b),
             lambda: encoder.embed_texts(texts)),
        ):  # fmt: skip
            plain_s, ours_s = [], []
            for _ in range(args.repeats):  # alternate, so drift hits both alike
                s, want = timed(plain, 1)
                plain_s += s
                s, got = timed(ours, 1)
                ours_s += s
            diff = float(np.abs(want - got).max())
            plain_rate = n / statistics.median(plain_s)
            ours_rate = n / statistics.median(ours_s)
            rows.append((label, plain_rate, ours_rate, diff))
            print(
                f"{label}: plain {plain_rate:,.1f}/s, turnout {ours_rate:,.1f}/s, "
                f"speed-up {ours_rate / plain_rate:.2f}x, max |diff| {diff:.1e}",
                flush=True,
            )
            if diff > 1e-4:
                sys.exit(f"{label}: embeddings differ by {diff:.1e} > 1e-4")

    command = "python benches/encoders.py " + " ".join(sys.argv[1:])
    report = "\n".join([
        f"### Encoder throughput, {args.model} CLIP on {args.device}, random weights "
        f"({dt.date.today()})",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device_name(args.device)}, float32.",
        f"Command: `.venv/bin/{command.strip()}`.",
        f"Inputs: {len(paths)} JPEG photos (scikit-image data, about 500 px on the long side), "
        f"{len(texts)} captions, batch size {args.batch_size}, median of {args.repeats} "
        f"alternating runs; turnout with {encoder.options.workers} decode worker(s) and "
        f"{encoder._streams} inference stream(s).",
        "",
        "| items | plain loop /s | turnout /s | speed-up | max abs diff |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {label} | {p:,.1f} | {o:,.1f} | {o / p:.2f}x | {d:.1e} |" for label, p, o, d in rows],
        "",
    ])  # fmt: skip
    print(report)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + report)


if __name__ == "__main__":
    main()
