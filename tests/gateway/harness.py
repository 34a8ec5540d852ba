"""A real gateway on a loopback port, in front of a real stand-in upstream."""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

from turnout.core import Settings
from turnout.gateway import BackgroundGateway
from turnout.providers.standin import StandInServer


def route_settings(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    fast_retry = {"attempts": 1, "base_delay_s": 0.01, "max_delay_s": 0.05}
    data: dict[str, Any] = {
        "gateway": {"deadline_s": 20},
        # Keyless requests belong to tenant `anonymous`: these tests are about routing;
        # tests/governance covers keys, budgets and limits.
        "governance": {"require_keys": False},
        "providers": {
            "primary": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "api_key": "sk-primary",
                "timeout_s": 5,
                "retry": fast_retry,
                "circuit": {"failures": 1000},
            },
            "backup": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "api_key": "sk-backup",
                "timeout_s": 5,
                "retry": fast_retry,
                "circuit": {"failures": 1000},
            },
        },
        "routes": {
            "auto": {
                "tiers": [
                    {
                        "name": "cheap",
                        "deployments": [
                            {"provider": "primary", "model": "gpt-4.1-mini"},
                            {
                                "provider": "backup",
                                "model": "backup-mini",
                                "catalog": "gpt-4.1-mini",
                            },
                        ],
                    },
                    {
                        "name": "strong",
                        "deployments": [{"provider": "primary", "model": "gpt-4.1"}],
                    },
                ],
                "rules": [{"when": {"json_schema": True}, "start": "strong"}],
            },
        },
    }
    for key, value in overrides.items():
        data[key] = value if not isinstance(value, dict) else {**data.get(key, {}), **value}
    return data


@contextmanager
def running_gateway(settings: dict[str, Any]) -> Iterator[str]:
    settings = {"governance": {"require_keys": False}, **settings}
    with tempfile.TemporaryDirectory(prefix="turnout-gateway-") as home:
        # Module-scoped gateways outlive each test's TURNOUT_HOME: give each its own home
        # (its ledger) unless the test chose one.
        settings.setdefault("home", home)
        with BackgroundGateway(Settings.model_validate(settings)) as url:
            yield url


def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="sk-client", max_retries=0, timeout=30)


def png_data_uri(size: tuple[int, int] = (1024, 1024), fmt: str = "PNG") -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "BMP": "bmp", "GIF": "gif", "WEBP": "webp"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(out.getvalue()).decode()


__all__ = ["StandInServer", "png_data_uri", "route_settings", "running_gateway", "sdk"]
