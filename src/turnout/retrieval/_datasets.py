"""Image-caption datasets for retrieval evaluation, and the specs that name them.

Specs: `flickr30k` (fetched into turnout's home when missing), `coco` (placed by hand),
`flickr30k:DIR`, `coco:DIR`, `karpathy:FILE.json`, `folder:DIR`, or a bare path whose
contents say which format it is. The default split is `test`: Flickr30K's 1,000-image
and COCO's 5,000-image Karpathy test splits, the ones published tables use.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from turnout.core import InvalidInputError

from ._errors import DatasetNotFoundError
from ._flickr import FLICKR_CSV, FLICKR_IMAGES, fetch_flickr30k
from ._formats import Entry, read_caption_folder, read_flickr_csv, read_karpathy_json

# The complete standard test splits that published tables report (name -> images).
STANDARD_SPLITS = {"flickr30k": 1000, "coco": 5000}


@dataclass(frozen=True)
class ImageCaptions:
    """One image, its stable id and every caption written for it."""

    id: str
    path: Path
    captions: tuple[str, ...]


@dataclass(frozen=True)
class RetrievalDataset:
    """Images with their captions, in a fixed order, and where they came from."""

    name: str
    split: str | None
    source: str
    items: tuple[ImageCaptions, ...]
    format: str
    limit: int | None = None
    seed: int | None = None

    @property
    def n_images(self) -> int:
        return len(self.items)

    @property
    def n_captions(self) -> int:
        return sum(len(item.captions) for item in self.items)

    @property
    def standard(self) -> str | None:
        """`flickr30k` or `coco` when this is the whole published test split, else None."""
        full = STANDARD_SPLITS.get(self.name)
        if self.split == "test" and self.limit is None and full == self.n_images:
            return self.name
        return None

    def captions(self) -> tuple[list[str], list[int]]:
        """Every caption in order, with the index of its image."""
        texts: list[str] = []
        owners: list[int] = []
        for index, item in enumerate(self.items):
            texts.extend(item.captions)
            owners.extend([index] * len(item.captions))
        return texts, owners

    def subset(self, limit: int, seed: int = 0) -> RetrievalDataset:
        """`limit` images drawn with `seed`, each with all its captions, in dataset order."""
        if limit < 1:
            raise InvalidInputError(f"--limit must be at least 1, got {limit}")
        if limit >= self.n_images:
            return replace(self, limit=limit, seed=seed)
        chosen = sorted(random.Random(seed).sample(range(self.n_images), limit))
        return replace(self, items=tuple(self.items[i] for i in chosen), limit=limit, seed=seed)

    def without(self, ids: set[str]) -> RetrievalDataset:
        """The dataset less the images whose ids are given (say, unreadable ones)."""
        return replace(self, items=tuple(i for i in self.items if i.id not in ids))


def _dataset(
    name: str, split: str | None, source: Path, fmt: str, entries: list[Entry]
) -> RetrievalDataset:
    if not entries:
        where = f"split {split!r} of " if split else ""
        raise DatasetNotFoundError(f"{where}{source}: no images (check --split)")
    items = tuple(ImageCaptions(i, p, tuple(c)) for i, p, c in entries)
    return RetrievalDataset(name=name, split=split, source=str(source), items=items, format=fmt)


def load_flickr30k(root: Path, split: str | None = "test") -> RetrievalDataset:
    """Flickr30K from a folder with the nlphuji CSV or Karpathy's JSON and the images."""
    csv_path, json_path = root / FLICKR_CSV, root / "dataset_flickr30k.json"
    images = root / FLICKR_IMAGES if (root / FLICKR_IMAGES).is_dir() else root
    if csv_path.is_file():
        return _dataset(
            "flickr30k", split, csv_path, "flickr-csv", read_flickr_csv(csv_path, images, split)
        )
    if json_path.is_file():
        return _dataset(
            "flickr30k", split, json_path, "karpathy", read_karpathy_json(json_path, images, split)
        )
    raise DatasetNotFoundError(
        f"{root}: no Flickr30K captions; place {FLICKR_CSV} (from the Hugging Face dataset "
        f"nlphuji/flickr30k) or Karpathy's dataset_flickr30k.json there, and the images in "
        f"{root / FLICKR_IMAGES}/"
    )


def load_coco(root: Path, split: str | None = "test") -> RetrievalDataset:
    """MS-COCO from a folder with Karpathy's dataset_coco.json and val2014/ (and train2014/)."""
    json_path = root / "dataset_coco.json"
    if not json_path.is_file():
        raise DatasetNotFoundError(
            f"{root}: no dataset_coco.json; place Karpathy's split file there and the COCO 2014 "
            f"images in {root / 'val2014'}/ (the 5K test split is drawn from val2014)"
        )
    return _dataset(
        "coco", split, json_path, "karpathy", read_karpathy_json(json_path, root, split)
    )


def load_karpathy(
    path: Path, split: str | None = "test", images: Path | None = None
) -> RetrievalDataset:
    """Any Karpathy split file; images relative to `images` (default: the file's folder)."""
    name = path.stem.removeprefix("dataset_") or "karpathy"
    entries = read_karpathy_json(path, images or path.parent, split)
    return _dataset(name, split, path, "karpathy", entries)


def load_caption_folder(folder: Path) -> RetrievalDataset:
    """A folder of images with captions.csv or captions.jsonl; it has no splits."""
    return _dataset(folder.name or "corpus", None, folder, "folder", read_caption_folder(folder))


def load_dataset(
    spec: str,
    *,
    split: str | None = "test",
    limit: int | None = None,
    seed: int = 0,
    home: Path | None = None,
    download: bool = True,
    log: Callable[[str], None] | None = None,
) -> RetrievalDataset:
    """Resolve a dataset spec (see the module docstring) and load it, then apply `limit`."""
    datasets_dir = (home or Path("~/.turnout")).expanduser() / "datasets"
    kind, _, rest = (
        spec.partition(":") if ":" in spec and not Path(spec).exists() else ("", "", spec)
    )
    if kind and kind not in ("flickr30k", "coco", "karpathy", "folder"):
        raise InvalidInputError(
            f"dataset {spec!r}: unknown kind {kind!r}; use flickr30k, coco, karpathy:FILE, "
            "folder:DIR or a path"
        )
    path = Path(rest).expanduser() if rest else None
    if kind == "" and rest in ("flickr30k", "coco"):
        kind, path = rest, None
    if kind == "flickr30k":
        root = path or datasets_dir / "flickr30k"
        if path is None and download:
            fetch_flickr30k(root, split=split, log=log)
        dataset = load_flickr30k(root, split)
    elif kind == "coco":
        dataset = load_coco(path or datasets_dir / "coco", split)
    elif kind == "karpathy":
        dataset = load_karpathy(_existing(path, spec), split)
    elif kind == "folder":
        dataset = load_caption_folder(_existing(path, spec))
    else:
        dataset = _detect(_existing(path, spec), split)
    return dataset.subset(limit, seed) if limit is not None else dataset


def _existing(path: Path | None, spec: str) -> Path:
    if path is None or not path.exists():
        raise DatasetNotFoundError(
            f"dataset {spec!r}: no such file or folder; give flickr30k, coco, a folder with "
            "captions.csv, or a Karpathy JSON file"
        )
    return path


def _detect(path: Path, split: str | None) -> RetrievalDataset:
    if path.is_file():
        if path.suffix == ".json":
            return load_karpathy(path, split)
        if path.name == FLICKR_CSV:
            return load_flickr30k(path.parent, split)
        raise InvalidInputError(
            f"{path}: a dataset file must be a Karpathy .json or {FLICKR_CSV}; for your own "
            "corpus give the folder that holds captions.csv"
        )
    if (path / FLICKR_CSV).is_file() or (path / "dataset_flickr30k.json").is_file():
        return load_flickr30k(path, split)
    if (path / "dataset_coco.json").is_file():
        return load_coco(path, split)
    return load_caption_folder(path)
