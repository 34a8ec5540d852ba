"""`turnout serve` as a user runs it: the example config, graceful shutdown, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from turnout.providers.standin import Reply, StandInServer, free_port

from ..cli import turnout_exe

EXAMPLE = Path(__file__).parents[2] / "examples" / "gateway.yaml"


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [*turnout_exe(), "serve", *args, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"turnout serve exited: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("turnout serve did not become healthy")


@pytest.fixture
def example_env(upstream: StandInServer) -> Iterator[dict[str, str]]:
    upstream.script.reset()
    yield {"OPENAI_BASE_URL": upstream.url + "/v1", "OPENAI_API_KEY": "sk-example"}


def test_example_config_serves_and_shuts_down_gracefully(
    upstream: StandInServer, example_env: dict[str, str]
) -> None:
    # Keys are required: make a tenant and a key with the CLI, against the same ledger.
    made = subprocess.run(
        [*turnout_exe(), "tenants", "create", "acme", "daily_budget_usd=5"],
        capture_output=True,
        text=True,
        env={**os.environ, **example_env},
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    issued = subprocess.run(
        [*turnout_exe(), "keys", "create", "--tenant", "acme"],
        capture_output=True,
        text=True,
        env={**os.environ, **example_env},
        timeout=60,
    )
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.splitlines()[0]
    assert key.startswith("tk-")
    proc, url = _start(["--config", str(EXAMPLE)], example_env)
    try:
        keyless = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert keyless.status_code == 401
        models = httpx.get(f"{url}/v1/models").json()["data"]
        assert {m["id"] for m in models} >= {"auto", "gpt-4.1-mini", "gpt-4.1"}
        upstream.script.push("gpt-4.1-mini", Reply(delay=1.5))
        result: dict[str, httpx.Response] = {}

        def slow() -> None:
            result["r"] = httpx.post(
                f"{url}/v1/chat/completions",
                timeout=10,
                headers={"authorization": f"Bearer {key}"},
                json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            )

        worker = threading.Thread(target=slow)
        worker.start()
        time.sleep(0.5)  # the request is in flight at the upstream
        proc.send_signal(signal.SIGTERM)
        worker.join(timeout=10)
        assert result["r"].status_code == 200
        assert result["r"].headers["x-turnout-model"] == "openai/gpt-4.1-mini"
        # uvicorn re-raises SIGTERM once it has drained, so the exit is the signal's.
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
        sent = upstream.script.requests_for("gpt-4.1-mini")[-1]
        assert sent.headers["authorization"] == "Bearer sk-example"
        # One JSON line per request on stderr, for log shippers; never the client's key.
        assert proc.stderr is not None
        logged = [json.loads(x) for x in proc.stderr.read().splitlines() if x.startswith("{")]
        mine = [x for x in logged if x.get("request_id") == result["r"].headers["x-request-id"]]
        assert len(mine) == 1 and mine[0]["tenant"] == "acme" and mine[0]["status"] == 200
        assert not any(key in json.dumps(x) for x in logged)
    finally:
        if proc.poll() is None:
            proc.kill()


def _serve_error(tmp_path: Path, config: str, env: dict[str, str] | None = None) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    out = subprocess.run(
        [*turnout_exe(), "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=30,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr.strip()


def test_missing_api_key_variable_is_named(tmp_path: Path) -> None:
    message = _serve_error(tmp_path, EXAMPLE.read_text())
    assert "environment variable OPENAI_API_KEY is not set" in message
    assert "providers.openai.api_key" in message


_PROVIDER = "providers: {a: {kind: openai}}\n"


def _route(deployment: str, extra: str = "") -> str:
    return f"routes: {{r: {{tiers: [{{name: t, deployments: [{deployment}]}}]{extra}}}}}\n"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("routes: {}\n", "no routes configured"),
        (
            _PROVIDER + _route("{provider: b, model: gpt-4o}"),
            "routes.r.tiers[0].deployments[0].provider: unknown provider 'b'",
        ),
        (
            _PROVIDER + _route("{provider: a, model: mystery}"),
            "model 'mystery' is not in the catalog",
        ),
        ("providers: {a: {kind: carrier-pigeon}}\n", "providers.a.kind"),
        (
            _PROVIDER + _route("{provider: a, model: gpt-4o}", ", require: [{regex: '('}]"),
            "routes.r.require[0].regex: not a valid regular expression",
        ),
        (
            _PROVIDER
            + _route("{provider: a, model: gpt-4o}", ", require: [{python: 'nowhere.mod:fn'}]"),
            "routes.r.require[0]: cannot load check",
        ),
    ],
)
def test_bad_gateway_config(tmp_path: Path, config: str, expected: str) -> None:
    assert expected in _serve_error(tmp_path, config)
