"""Parsers for the caption formats turnout reads; each error names the file and the row.

- Flickr30K as `nlphuji/flickr30k` publishes it: a CSV with `raw` (a JSON list of five
  captions), `filename` and `split` columns; images in one folder.
- Karpathy's JSON (`dataset_flickr30k.json`, `dataset_coco.json`): `images[]` with
  `filename`, optional `filepath`, `split` and `sentences[].raw`.
- A generic corpus: a folder of images with `captions.csv` (columns `image`, `caption`,
  optional `id`; one row per caption) or `captions.jsonl` (`{"image", "caption"}` or
  `{"image", "captions": [...]}` per line).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._errors import DatasetError, DatasetNotFoundError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

Entry = tuple[str, Path, list[str]]
"""(image id, image path, captions) in file order."""


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc


def _csv_rows(path: Path, required: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows with their line numbers; a missing column is an error naming the header."""
    lines = _read_text(path).splitlines(keepends=True)
    reader = csv.DictReader(lines)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}; header is {reader.fieldnames}"
        )
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise DatasetError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from exc


def _clean(captions: list[Any], where: str) -> list[str]:
    if not all(isinstance(c, str) for c in captions):
        raise DatasetError(f"{where}: captions must be strings, got {captions!r:.120}")
    kept = [c.strip() for c in captions if c.strip()]
    if not kept:
        raise DatasetError(f"{where}: image has no captions; give it at least one or remove it")
    return kept


def _no_duplicate(seen: dict[str, str], image_id: str, where: str) -> None:
    if image_id in seen:
        raise DatasetError(
            f"{where}: duplicate image id {image_id!r} (first at {seen[image_id]}); "
            "each image must appear once"
        )
    seen[image_id] = where


def read_flickr_csv(path: Path, images: Path, split: str | None) -> list[Entry]:
    """Entries of the nlphuji Flickr30K CSV, for one split (None: every row)."""
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for line, row in _csv_rows(path, ("raw", "filename", "split")):
        if split is not None and row["split"] != split:
            continue
        where = f"{path}:{line}"
        try:
            raw = json.loads(row["raw"])
        except ValueError as exc:
            raise DatasetError(f"{where}: column raw is not a JSON list of captions") from exc
        if not isinstance(raw, list):
            raise DatasetError(f"{where}: column raw is not a JSON list of captions")
        name = row["filename"].strip()
        if not name:
            raise DatasetError(f"{where}: empty filename")
        _no_duplicate(seen, name, where)
        entries.append((name, images / name, _clean(raw, where)))
    return entries


def read_karpathy_json(path: Path, images: Path, split: str | None) -> list[Entry]:
    """Entries of a Karpathy split file (Flickr30K, Flickr8K or COCO), for one split."""
    try:
        data = json.loads(_read_text(path))
    except ValueError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from exc
    records = data.get("images") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise DatasetError(f"{path}: expected an object with an 'images' list (Karpathy format)")
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for number, record in enumerate(records):
        where = f"{path}: images[{number}]"
        if not isinstance(record, dict) or not isinstance(record.get("filename"), str):
            raise DatasetError(f"{where}: expected an object with a 'filename'")
        if split is not None and record.get("split") != split:
            continue
        sentences = record.get("sentences")
        if not isinstance(sentences, list) or not all(
            isinstance(s, dict) and "raw" in s for s in sentences
        ):
            raise DatasetError(f"{where}: 'sentences' must be a list of objects with 'raw'")
        folder = record.get("filepath")
        # COCO's file keeps the original folder (val2014/); Flickr's images sit flat.
        image_dir = (
            images / folder if isinstance(folder, str) and (images / folder).is_dir() else images
        )
        name = record["filename"]
        image_id = f"{folder}/{name}" if isinstance(folder, str) and folder else name
        _no_duplicate(seen, image_id, where)
        entries.append((image_id, image_dir / name, _clean([s["raw"] for s in sentences], where)))
    return entries


def read_caption_folder(folder: Path) -> list[Entry]:
    """Entries of a generic corpus: every image in `folder` must have captions."""
    csv_path, jsonl_path = folder / "captions.csv", folder / "captions.jsonl"
    if csv_path.is_file():
        source, entries = csv_path, _generic_csv(csv_path, folder)
    elif jsonl_path.is_file():
        source, entries = jsonl_path, _generic_jsonl(jsonl_path, folder)
    else:
        raise DatasetNotFoundError(
            f"{folder}: no captions.csv or captions.jsonl; add one with an image path "
            "(relative to the folder) and a caption per row"
        )
    named = {path.resolve() for _, path, _ in entries}
    orphans = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.resolve() not in named
    )
    if orphans:
        shown = ", ".join(orphans[:3]) + (" ..." if len(orphans) > 3 else "")
        raise DatasetError(
            f"{folder}: {len(orphans)} image(s) have no captions in {source.name} ({shown}); "
            "add caption rows for them or move them out of the folder"
        )
    return entries


def _generic_csv(path: Path, folder: Path) -> list[Entry]:
    by_id: dict[str, Entry] = {}
    first_line: dict[str, str] = {}
    for line, row in _csv_rows(path, ("image", "caption")):
        where = f"{path}:{line}"
        image = (row.get("image") or "").strip()
        caption = (row.get("caption") or "").strip()
        if not image or not caption:
            raise DatasetError(f"{where}: both 'image' and 'caption' must be non-empty")
        image_id = (row.get("id") or "").strip() or image
        if image_id in by_id and by_id[image_id][1] != folder / image:
            raise DatasetError(
                f"{where}: duplicate image id {image_id!r} for a different image "
                f"(first at {first_line[image_id]}); ids must name one image"
            )
        first_line.setdefault(image_id, where)
        by_id.setdefault(image_id, (image_id, folder / image, []))[2].append(caption)
    if not by_id:
        raise DatasetError(f"{path}: no caption rows")
    return list(by_id.values())


def _generic_jsonl(path: Path, folder: Path) -> list[Entry]:
    by_id: dict[str, Entry] = {}
    listed: dict[str, str] = {}
    for line, text in enumerate(_read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        where = f"{path}:{line}"
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{where}: not valid JSON: {exc}") from exc
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            raise DatasetError(f"{where}: expected an object with an 'image' path")
        image = record["image"].strip()
        image_id = str(record.get("id") or image)
        if "captions" in record:
            captions = record["captions"]
            if not isinstance(captions, list):
                raise DatasetError(f"{where}: 'captions' must be a list of strings")
            _no_duplicate(listed, image_id, where)
        elif "caption" in record:
            captions = [record["caption"]]
        else:
            raise DatasetError(f"{where}: needs 'caption' (a string) or 'captions' (a list)")
        entry = by_id.setdefault(image_id, (image_id, folder / image, []))
        if entry[1] != folder / image:
            raise DatasetError(f"{where}: duplicate image id {image_id!r} for a different image")
        entry[2].extend(_clean(list(captions), where))
    if not by_id:
        raise DatasetError(f"{path}: no caption lines")
    return list(by_id.values())
