"""`turnout serve`: the OpenAI-compatible gateway."""

from __future__ import annotations

from pathlib import Path

import typer

from ._context import CliState


def serve(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Settings file with providers and routes."
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (gateway.host)."),
    port: int | None = typer.Option(None, "--port", "-p", help="Listen port (gateway.port)."),
) -> None:
    """Serve /v1/chat/completions: routing, escalation and failover over your providers."""
    from turnout.gateway import serve as run

    state: CliState = ctx.obj
    if config is not None:
        state = CliState(config)
    run(state.settings, host=host, port=port)
