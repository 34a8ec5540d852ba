from __future__ import annotations

from pathlib import Path

import pytest

from ..retrieval.tiny import build_clip


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def other_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip(tmp_path_factory.mktemp("tiny-clip-other"), seed=1)


@pytest.fixture(scope="session")
def encoder(clip_dir: Path):  # type: ignore[no-untyped-def]
    from turnout.retrieval import EncoderOptions, load_encoder

    return load_encoder(str(clip_dir), EncoderOptions(batch_size=8, workers=0))
