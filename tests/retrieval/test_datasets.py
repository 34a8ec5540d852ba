"""Dataset loaders: each format, the split and --limit rules, and bad input named by row."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from turnout.core import InvalidInputError
from turnout.retrieval import (
    DatasetError,
    DatasetNotFoundError,
    fetch_flickr30k,
    load_caption_folder,
    load_dataset,
)

from .tiny import caption_folder, flickr_csv_folder, karpathy_json, make_image


def test_flickr_csv_reads_one_split_with_five_captions(tmp_path: Path) -> None:
    flickr_csv_folder(tmp_path, {"train": 3, "test": 4, "val": 2})
    data = load_dataset(f"flickr30k:{tmp_path}")
    assert (data.name, data.split, data.format) == ("flickr30k", "test", "flickr-csv")
    assert [i.id for i in data.items] == ["1003.jpg", "1004.jpg", "1005.jpg", "1006.jpg"]
    assert all(len(i.captions) == 5 and i.path.is_file() for i in data.items)
    assert load_dataset(f"flickr30k:{tmp_path}", split="val").n_images == 2
    # The same folder is recognised from its contents alone.
    assert load_dataset(str(tmp_path)).n_images == 4


def test_karpathy_flickr_and_coco(tmp_path: Path) -> None:
    karpathy_json(tmp_path / "dataset_flickr30k.json", tmp_path, {"train": 2, "test": 3})
    data = load_dataset(f"karpathy:{tmp_path / 'dataset_flickr30k.json'}")
    assert (data.name, data.n_images, data.n_captions) == ("flickr30k", 3, 15)
    coco = tmp_path / "coco"
    coco.mkdir()
    karpathy_json(coco / "dataset_coco.json", coco, {"test": 2, "restval": 2}, coco=True)
    data = load_dataset(f"coco:{coco}")
    assert data.name == "coco" and data.n_images == 2
    assert data.items[0].id.startswith("val2014/") and data.items[0].path.is_file()
    assert load_dataset(str(coco)).n_images == 2


def test_generic_csv_groups_captions_by_image(tmp_path: Path) -> None:
    caption_folder(tmp_path, n_images=3, per_image=2)
    data = load_dataset(str(tmp_path))
    assert data.format == "folder" and data.split is None
    assert [len(i.captions) for i in data.items] == [2, 2, 2]
    texts, owners = data.captions()
    assert owners == [0, 0, 1, 1, 2, 2] and len(texts) == 6


def test_generic_jsonl_takes_one_or_many_captions(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        make_image(tmp_path / name, len(name))
    lines = [
        {"image": "a.png", "captions": ["a red ball", "a small ball"]},
        {"image": "b.png", "caption": "a dog"},
        {"image": "b.png", "caption": "a dog on grass"},
    ]
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    data = load_caption_folder(tmp_path)
    assert [(i.id, len(i.captions)) for i in data.items] == [("a.png", 2), ("b.png", 2)]


def test_limit_is_seeded_and_keeps_every_caption(tmp_path: Path) -> None:
    caption_folder(tmp_path, n_images=12, per_image=3)
    first = load_dataset(str(tmp_path), limit=5, seed=7)
    again = load_dataset(str(tmp_path), limit=5, seed=7)
    other = load_dataset(str(tmp_path), limit=5, seed=8)
    assert [i.id for i in first.items] == [i.id for i in again.items]
    assert [i.id for i in first.items] != [i.id for i in other.items]
    assert first.n_images == 5 and first.n_captions == 15 and first.limit == 5
    assert [i.id for i in first.items] == sorted(i.id for i in first.items)
    with pytest.raises(InvalidInputError, match="--limit"):
        load_dataset(str(tmp_path), limit=0)


def test_standard_split_only_when_complete(tmp_path: Path) -> None:
    flickr_csv_folder(tmp_path, {"test": 3})
    data = load_dataset(f"flickr30k:{tmp_path}")
    assert data.standard is None  # 3 images, not the 1,000 of the published split


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("image,caption\nimg00.png,a dog\nimg00.png,\n", r"captions.csv:3: both 'image'"),
        ("picture,caption\nimg00.png,a dog\n", "missing column.*image"),
        ("image,caption\n", "no caption rows"),
        (
            "image,caption,id\nimg00.png,a dog,x\nimg01.png,a cat,x\n",
            r"captions.csv:3: duplicate image id 'x'",
        ),
    ],
)
def test_bad_caption_rows_are_named(tmp_path: Path, csv_text: str, message: str) -> None:
    make_image(tmp_path / "img00.png", 0)
    make_image(tmp_path / "img01.png", 1)
    _write(tmp_path / "captions.csv", csv_text)
    with pytest.raises(DatasetError, match=message):
        load_caption_folder(tmp_path)


def test_an_image_without_captions_is_named(tmp_path: Path) -> None:
    caption_folder(tmp_path, n_images=2)
    make_image(tmp_path / "sub" / "stray.png", 99)
    with pytest.raises(DatasetError, match=r"1 image\(s\) have no captions.*sub/stray.png"):
        load_caption_folder(tmp_path)


def test_bad_jsonl_lines_are_named(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 0)
    _write(tmp_path / "captions.jsonl", '{"image": "a.png", "caption": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl:2: not valid JSON"):
        load_caption_folder(tmp_path)
    _write(tmp_path / "captions.jsonl", '{"image": "a.png", "captions": []}\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl:1: image has no captions"):
        load_caption_folder(tmp_path)
    lines = '{"image": "a.png", "captions": ["x"]}\n{"image": "a.png", "captions": ["y"]}\n'
    _write(tmp_path / "captions.jsonl", lines)
    with pytest.raises(DatasetError, match=r"captions.jsonl:2: duplicate image id 'a.png'"):
        load_caption_folder(tmp_path)


def test_bad_flickr_csv_rows(tmp_path: Path) -> None:
    flickr_csv_folder(tmp_path, {"test": 2})
    csv_path = tmp_path / "flickr_annotations_30k.csv"
    lines = csv_path.read_text().splitlines()
    _write(csv_path, "\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DatasetError, match=r"flickr_annotations_30k.csv:4: duplicate image id"):
        load_dataset(f"flickr30k:{tmp_path}")
    _write(csv_path, "\n".join([lines[0], '"not json","[]",test,x.jpg,1']) + "\n")
    with pytest.raises(DatasetError, match=r"csv:2: column raw is not a JSON list"):
        load_dataset(f"flickr30k:{tmp_path}")
    _write(csv_path, "\n".join([lines[0], '"[]","[]",test,x.jpg,1']) + "\n")
    with pytest.raises(DatasetError, match=r"csv:2: image has no captions"):
        load_dataset(f"flickr30k:{tmp_path}")


def test_bad_karpathy_files(tmp_path: Path) -> None:
    path = _write(tmp_path / "dataset_x.json", "{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(f"karpathy:{path}")
    _write(path, json.dumps({"images": [{"filename": "a.jpg", "split": "test"}]}))
    with pytest.raises(DatasetError, match=r"images\[0\]: 'sentences'"):
        load_dataset(f"karpathy:{path}")
    record = {"filename": "a.jpg", "split": "test", "sentences": [{"raw": "x"}]}
    _write(path, json.dumps({"images": [record, record]}))
    with pytest.raises(DatasetError, match=r"images\[1\]: duplicate image id 'a.jpg'"):
        load_dataset(f"karpathy:{path}")


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("nope:here", InvalidInputError, "unknown kind 'nope'"),
        ("folder:/no/such/place", DatasetNotFoundError, "no such file or folder"),
        ("/no/such/place", DatasetNotFoundError, "no such file or folder"),
        ("coco", DatasetNotFoundError, "dataset_coco.json.*val2014"),
    ],
)
def test_specs_that_name_nothing(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_dataset(spec)


def test_a_folder_without_captions_says_what_to_add(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 0)
    with pytest.raises(DatasetNotFoundError, match=r"no captions\.csv or captions\.jsonl"):
        load_dataset(str(tmp_path))


def test_flickr30k_offline_says_which_files_go_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("flickr30k", home=tmp_path)
    message = str(caught.value)
    root = tmp_path / "datasets" / "flickr30k"
    assert "offline" in message and str(root / "flickr_annotations_30k.csv") in message
    assert str(root / "flickr30k-images") in message and "nlphuji/flickr30k" in message


def test_fetch_extracts_only_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub is replaced by local files; the CSV is copied and only test images unzipped."""
    source = flickr_csv_folder(tmp_path / "source", {"train": 3, "test": 2})
    archive = tmp_path / "flickr30k-images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for image in sorted((source / "flickr30k-images").iterdir()):
            zf.write(image, f"flickr30k-images/{image.name}")
    served = {
        "flickr_annotations_30k.csv": source / "flickr_annotations_30k.csv",
        "flickr30k-images.zip": archive,
    }
    asked: list[str] = []

    def fake_download(repo_id: str, filename: str, repo_type: str) -> str:
        assert (repo_id, repo_type) == ("nlphuji/flickr30k", "dataset")
        asked.append(filename)
        return str(served[filename])

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    root = tmp_path / "home" / "datasets" / "flickr30k"
    data = load_dataset("flickr30k", home=tmp_path / "home")
    assert asked == ["flickr_annotations_30k.csv", "flickr30k-images.zip"]
    assert sorted(p.name for p in (root / "flickr30k-images").iterdir()) == ["1003.jpg", "1004.jpg"]
    assert data.n_images == 2 and all(i.path.is_file() for i in data.items)
    asked.clear()
    fetch_flickr30k(root)
    assert asked == []  # everything is in place: nothing is fetched again
