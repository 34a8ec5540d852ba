"""The CLI end to end, as a subprocess: output, JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli import run
from .images import png_header_only, real_image


def test_help_lists_commands() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("tokens", "catalog", "recommend", "demo"):
        assert command in out.stdout


def test_tokens_on_real_files_json(tmp_path: Path) -> None:
    a = real_image(tmp_path / "a.png", (1024, 1024))
    b = real_image(tmp_path / "b.jpg", (2048, 4096), "JPEG")
    out = run("tokens", str(a), str(b), "--model", "gpt-4o", "--detail", "high", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [i["tokens"] for i in data["images"]] == [765, 1105]
    assert data["total_tokens"] == 1870
    assert data["total_cost_usd"] == "0.004675"
    assert data["images"][1]["processed_width"] == 768


def test_tokens_table(tmp_path: Path) -> None:
    a = real_image(tmp_path / "page.png", (1000, 1000))
    out = run("tokens", str(a), "--model", "claude-sonnet-4-5")
    assert out.returncode == 0, out.stderr
    assert "1,334" in out.stdout and "total" in out.stdout


def test_tokens_counts_a_huge_header_without_decoding(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header_only(100_000, 100_000))
    out = run("tokens", str(huge), "--model", "gpt-4o", "--detail", "high", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["images"][0]["tokens"] == 765


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "missing.png", "--model", "gpt-4o"], "missing.png: no such file"),
        (["tokens", "empty.png", "--model", "gpt-4o"], "empty.png: the file is empty"),
        (["tokens", "corrupt.png", "--model", "gpt-4o"], "corrupt.png: corrupt PNG header"),
        (["tokens", "zero.png", "--model", "gpt-4o"], "zero.png: image is zero-sized"),
        (["tokens", "absurd.png", "--model", "gpt-4o"], "beyond any real image"),
        (["tokens", "ok.png", "--model", "gpt-5-turbo-ultra"], "unknown model 'gpt-5-turbo-ultra'"),
        (
            ["tokens", "ok.png", "--model", "gpt-4o", "--detail", "max"],
            "unknown detail level 'max'",
        ),
        (
            ["tokens", "ok.png", "--model", "gpt-4o", "--detail", "medium"],
            "not defined for the openai_tile",
        ),
        (["tokens", "--size", "-3x100", "--model", "gpt-4o"], "must be positive"),
        (["tokens", "--size", "wide", "--model", "gpt-4o"], "expected WIDTHxHEIGHT"),
        (["tokens", "--model", "gpt-4o"], "give at least one IMAGE"),
        (["catalog", "show", "nope"], "unknown model 'nope'"),
        (["recommend", "--shape", "docqa", "--max-cost", "lots"], "expected a number of USD"),
        (["recommend", "--shape", "docqa", "--modality", "smell"], "--modality 'smell'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (tmp_path / "zero.png").write_bytes(png_header_only(0, 0))
    (tmp_path / "absurd.png").write_bytes(png_header_only(2**31 - 1, 5))
    real_image(tmp_path / "ok.png", (10, 10))
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_shape_is_a_usage_error() -> None:
    out = run("recommend", "--shape", "telepathy")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "turnout.yaml").write_text("log_level: 7\n")
    out = run("catalog", "list", cwd=tmp_path)
    assert out.returncode == 2
    assert "turnout.yaml: key 'log_level'" in out.stderr


def test_catalog_list_and_show() -> None:
    listed = run("catalog", "list", "--json")
    ids = {m["id"] for m in json.loads(listed.stdout)}
    assert {"gpt-4o", "gemini-2.5-pro", "claude-haiku-4-5", "qwen2-vl-72b-instruct"} <= ids
    shown = run("catalog", "show", "gpt-4o")
    assert shown.returncode == 0
    assert "openai_tile" in shown.stdout and "as of 2025-11-01" in shown.stdout
    assert "1024x1024 auto: 765 tokens" in shown.stdout


def test_catalog_file_from_settings(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text('models:\n  - id: gpt-4o\n    price: {input: "9.99"}\n')
    (tmp_path / "turnout.yaml").write_text("catalog_files: [prices.yaml]\n")
    out = run("catalog", "show", "gpt-4o", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["price"]["input"] == "9.99"


def test_recommend_json_and_table() -> None:
    out = run("recommend", "--shape", "assistant", "--json")
    data = json.loads(out.stdout)
    costs = [float(c["cost_usd"]) for c in data["ranked"]]
    assert costs == sorted(costs) and data["dropped"]
    table = run("recommend", "--shape", "docqa", "--self-hosted")
    assert "recommended:" in table.stdout and "retrieval stack:" in table.stdout
    assert "hosted API" in table.stdout
