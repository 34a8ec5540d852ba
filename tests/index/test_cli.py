"""`turnout index add|refresh|status` and `turnout search` as a user runs them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..cli import run
from .corpus import PHOTOS, make_pdf, photo_folder, truncated_jpeg


def test_index_a_folder_and_a_pdf_then_search_refresh_and_status(
    tmp_path: Path, clip_dir: Path
) -> None:
    photos = photo_folder(tmp_path / "photos", names=PHOTOS[:4])
    truncated_jpeg(photos / "broken.jpg")
    pdf = make_pdf(tmp_path / "docs" / "manual.pdf", ["Install the pump", "Replace the filter"])
    common = ["--collection", "demo", "--tenant", "acme"]

    done = run(
        "index", "add", str(photos), str(pdf), *common, "--encoder", str(clip_dir), "--slo", "1h"
    )
    assert done.returncode == 0, done.stderr
    assert "5 new" in done.stdout and "12 items written" in done.stdout
    assert f"skipped {photos / 'broken.jpg'}: corrupt or truncated image" in done.stdout

    again = run("index", "add", str(photos), str(pdf), *common, "--json")
    report = json.loads(again.stdout)[0]
    assert (report["items_written"], report["sources_unchanged"]) == (0, 6)

    found = run("search", "Replace the filter", *common, "-k", "3", "--modality", "page", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    assert {h["page"] for h in hits} == {1, 2}
    assert hits[0]["source"] == str(pdf.resolve())
    assert "Replace the filter" in {h["text"] for h in hits}

    by_image = run(
        "search",
        "--image",
        str(photos / "coffee.png"),
        *common,
        "-k",
        "1",
        "--modality",
        "image",
        "--json",
    )
    assert by_image.returncode == 0, by_image.stderr
    assert json.loads(by_image.stdout)[0]["source"] == str((photos / "coffee.png").resolve())

    status = run("index", "status", "--collection", "demo", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["slo_ok"] is True

    # An old change breaks the 1h SLO: status exits 1 until a refresh indexes it.
    old = time.time() - 3 * 3600
    new = photos / "extra.png"
    new.write_bytes((photos / "coffee.png").read_bytes())
    os.utime(new, (old, old))
    (photos / "astronaut.jpg").unlink()
    broken = run("index", "status", "--collection", "demo")
    assert broken.returncode == 1
    assert "pending: 2 (1 new, 0 changed, 1 deleted)" in broken.stdout
    assert "BROKEN" in broken.stdout

    refreshed = run("index", "refresh", "--collection", "demo")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "1 new" in refreshed.stdout and "1 deleted" in refreshed.stdout
    assert run("index", "status", "--collection", "demo").returncode == 0


def test_errors_are_one_line(tmp_path: Path, clip_dir: Path, other_clip_dir: Path) -> None:
    photos = photo_folder(tmp_path / "photos", names=PHOTOS[:1])
    common = ["--collection", "demo", "--tenant", "acme"]
    missing = run("search", "x", *common)
    assert missing.returncode == 2 and "no collection 'demo'" in missing.stderr
    no_encoder = run("index", "add", str(photos), *common)
    assert no_encoder.returncode == 2 and "give --encoder" in no_encoder.stderr
    assert run("index", "add", str(photos), *common, "-e", str(clip_dir)).returncode == 0
    wrong = run("search", "x", *common, "--encoder", str(other_clip_dir))
    assert wrong.returncode == 2 and "fingerprint" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    bad_slo = run("index", "add", str(photos), *common, "--slo", "soon")
    assert bad_slo.returncode == 2 and "duration 'soon'" in bad_slo.stderr


def test_a_quantized_collection_from_the_cli(tmp_path: Path, clip_dir: Path) -> None:
    photos = photo_folder(tmp_path / "photos", names=PHOTOS[:3])
    common = ["--collection", "q", "--tenant", "acme"]
    bad = run("index", "add", str(photos), *common, "-e", str(clip_dir), "--quantization", "int4")
    assert bad.returncode == 2 and "quantization 'int4': expected one of" in bad.stderr
    turbo2 = ["--quantization", "turbo2"]
    made = run("index", "add", str(photos), *common, "-e", str(clip_dir), *turbo2)
    assert made.returncode == 0, made.stderr
    status = run("index", "status", "--collection", "q", "--json")
    assert json.loads(status.stdout)["quantization"] == "turbo2"
    assert "turbo2 codes" in run("index", "status", "--collection", "q").stdout
    found = run("search", "a photo", *common, "--json")
    assert found.returncode == 0 and len(json.loads(found.stdout)) >= 3  # photos, captions
    other = run("index", "add", str(photos), *common, "--quantization", "scalar")
    assert other.returncode == 2 and "has turbo2 codes, not scalar" in other.stderr
