"""`turnout eval retrieval` as users run it: a real subprocess, twice, the second from cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from turnout.cli._eval import _parse_ks
from turnout.core import InvalidInputError

from ..cli import run
from ..retrieval.tiny import caption_folder


def test_end_to_end_then_from_cache(tmp_path: Path, clip_dir: Path, siglip_dir: Path) -> None:
    corpus = caption_folder(tmp_path / "corpus", n_images=8, per_image=2)
    out = tmp_path / "report"
    args = [
        "eval", "retrieval", "--dataset", str(corpus), "--encoder", str(clip_dir),
        "--encoder", str(siglip_dir), "--k", "1", "5", "--out", str(out), "--bootstrap", "200",
    ]  # fmt: skip
    first = run(*args, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "T->I R@1" in first.stdout and "I->T R@5" in first.stdout
    assert "corpus: 8 images, 16 captions" in first.stdout
    assert str(clip_dir) in first.stdout and "images/s" in first.stdout
    for name in ("results.json", "results.csv", "results.md", "gallery.html"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    assert data["k"] == [1, 5]
    assert [e["timings"]["images_encoded"] for e in data["encoders"]] == [8, 8]
    assert {e["identity"]["family"] for e in data["encoders"]} == {"clip", "siglip"}
    assert "<img" in (out / "gallery.html").read_text()

    second = run(*args, timeout=300)
    assert second.returncode == 0, second.stderr
    again = json.loads((out / "results.json").read_text())
    assert [e["timings"]["images_encoded"] for e in again["encoders"]] == [0, 0]
    assert [e["timings"]["images_from_cache"] for e in again["encoders"]] == [8, 8]
    assert "images from cache" in second.stdout
    assert again["encoders"][0]["text_to_image"] == data["encoders"][0]["text_to_image"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--encoder", "./no/such/model"], "turnout: error: encoder './no/such/model'"),
        (["--encoder", "openai/clip-vit-base-patch32"], "offline"),
        (["--dataset", "nope:x", "--encoder", "a/b"], "unknown kind 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    corpus = caption_folder(tmp_path / "corpus", n_images=2, per_image=1)
    result = run("eval", "retrieval", "--dataset", str(corpus), *args, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_k_values_in_every_spelling() -> None:
    assert _parse_ks(None, []) == [1, 5, 10]
    assert _parse_ks(["1"], ["5", "10"]) == [1, 5, 10]
    assert _parse_ks(["1,5", "20"], []) == [1, 5, 20]
    with pytest.raises(InvalidInputError, match="positive integers"):
        _parse_ks(["0"], [])
    with pytest.raises(InvalidInputError, match="unexpected argument"):
        _parse_ks(None, ["stray"])


def test_the_cli_does_not_import_torch() -> None:
    heavy = "{'torch', 'transformers', 'numpy'}"
    code = f"import sys, turnout.cli; print(sorted({heavy} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
