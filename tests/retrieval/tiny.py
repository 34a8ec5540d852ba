"""Tiny CLIP and SigLIP checkpoints and image-caption fixtures, built on the spot, offline.

The models have two layers and hidden size 32, random weights and a word-level tokenizer
written next to them, so they load through the same `load_encoder` path as hub models.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
from PIL import Image

from turnout.retrieval.standin import TEXT_LIMIT, build_standin_clip, build_standin_siglip

__all__ = ["TEXT_LIMIT", "build_clip", "build_siglip"]

WORDS = tuple(
    re.findall(
        r"\w+",
        "a an the dog cat man woman child red blue green ball car tree on in of next to left "
        "right above below behind front top two three runs sits plays with near grass street "
        "park water and is are small big white black young old people dogs cats",
    )
)


def build_clip(path: Path, seed: int = 0) -> Path:
    return build_standin_clip(path, WORDS, seed)


def build_siglip(path: Path, seed: int = 0) -> Path:
    return build_standin_siglip(path, WORDS, seed)


def make_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A distinct picture: a coloured background with a block whose place depends on seed."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = rng.integers(0, 255, size=3, dtype=np.uint8)
    y, x = rng.integers(0, size[1] // 2), rng.integers(0, size[0] // 2)
    pixels[y : y + size[1] // 2, x : x + size[0] // 2] = rng.integers(0, 255, size=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def caption(rng: random.Random, words: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def caption_folder(root: Path, n_images: int = 6, per_image: int = 2, seed: int = 0) -> Path:
    """A generic corpus: images plus captions.csv with `per_image` rows per image."""
    rng = random.Random(seed)
    rows = ["image,caption"]
    for i in range(n_images):
        name = f"img{i:02d}.png"
        make_image(root / name, seed * 1000 + i)
        rows += [f"{name},{caption(rng)}" for _ in range(per_image)]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root


def flickr_csv_folder(root: Path, splits: dict[str, int], per_image: int = 5) -> Path:
    """The nlphuji layout: flickr_annotations_30k.csv and flickr30k-images/."""
    rng = random.Random(1)
    lines = ["raw,sentids,split,filename,img_id"]
    number = 0
    for split, count in splits.items():
        for _ in range(count):
            name = f"{1000 + number}.jpg"
            make_image(root / "flickr30k-images" / name, number).rename(
                root / "flickr30k-images" / name
            )
            raw = json.dumps([caption(rng) for _ in range(per_image)]).replace('"', '""')
            ids = json.dumps(list(range(number * per_image, (number + 1) * per_image)))
            lines.append(f'"{raw}","{ids}",{split},{name},{number}')
            number += 1
    (root / "flickr_annotations_30k.csv").write_text("\n".join(lines) + "\n")
    return root


def karpathy_json(
    path: Path, images: Path, splits: dict[str, int], coco: bool = False, per_image: int = 5
) -> Path:
    """A Karpathy split file; COCO's entries keep their `filepath` folder."""
    rng = random.Random(2)
    records = []
    for number, split in enumerate(s for s, n in splits.items() for _ in range(n)):
        folder = "val2014" if coco else ""
        name = f"COCO_val2014_{number:012d}.jpg" if coco else f"{2000 + number}.jpg"
        make_image(images / folder / name, 500 + number)
        sentences = [{"raw": caption(rng), "tokens": []} for _ in range(per_image)]
        record = {"filename": name, "split": split, "imgid": number, "sentences": sentences}
        if coco:
            record["filepath"] = folder
        records.append(record)
    path.write_text(json.dumps({"images": records, "dataset": "coco" if coco else "flickr30k"}))
    return path
