"""A real gateway with a rag route and the search endpoints, in front of the stand-in
upstream, with a tiny CLIP built on the spot as the collections' encoder."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.gateway.conftest import standin, upstream
from tests.gateway.harness import route_settings
from tests.index.conftest import clip_dir, offline
from turnout.core import Settings
from turnout.gateway import BackgroundGateway
from turnout.providers.standin import StandInServer

__all__ = ["clip_dir", "offline", "standin", "upstream"]

ADMIN = "admin-secret-for-rag-tests"


@dataclass
class Gateway:
    url: str
    home: Path
    app: Any
    admin: httpx.Client

    def tenant(self, tenant_id: str, **policy: Any) -> str:
        made = self.admin.post("/admin/tenants", json={"id": tenant_id, "policy": policy})
        assert made.status_code == 201, made.text
        key = self.admin.post(f"/admin/tenants/{tenant_id}/keys", json={"name": "test"})
        assert key.status_code == 201, key.text
        return str(key.json()["key"])

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {key}"}, timeout=60
        )


def rag_settings(upstream_url: str, home: Path, clip: Path, **retrieval: Any) -> dict[str, Any]:
    settings = route_settings(upstream_url)
    auto = settings["routes"]["auto"]
    settings["home"] = str(home)
    settings["governance"] = {"require_keys": True, "admin_key": ADMIN}
    settings["search"] = {"encoder": str(clip)}
    settings["routes"]["docqa"] = {
        "pattern": "rag",
        "tiers": auto["tiers"],
        "retrieval": {"collection": "docs", "k": 2, "detail": "low", **retrieval},
    }
    return settings


@pytest.fixture(scope="module")
def gateway(
    upstream: StandInServer, clip_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("rag-home")
    settings = Settings.model_validate(rag_settings(upstream.url, home, clip_dir))
    running = BackgroundGateway(settings)
    with running as url:
        admin = httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"})
        yield Gateway(url, home, running.app, admin)
        admin.close()


def jpeg_bytes(image: Image.Image, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()
