from __future__ import annotations

from pathlib import Path

import pytest

from .tiny import build_clip, build_siglip


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches the hub: offline mode, and an empty Hugging Face cache of its own."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(params=["clip", "siglip"])
def model_dir(request: pytest.FixtureRequest, clip_dir: Path, siglip_dir: Path) -> Path:
    return clip_dir if request.param == "clip" else siglip_dir
