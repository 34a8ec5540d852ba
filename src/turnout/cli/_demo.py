"""`turnout demo`: the whole blueprint on embedded defaults (see turnout.demo)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._context import console


def demo(
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep the gateway running after the summary."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="A fresh folder for the demo's ledger and indexes (default: new)."
    ),
    port: int | None = typer.Option(None, "--port", "-p", help="Gateway port (default: free)."),
    encoder: str | None = typer.Option(
        None,
        "--encoder",
        envvar="TURNOUT_DEMO_ENCODER",
        help="A real CLIP or SigLIP (hub id or folder) for the photos; default: a stand-in.",
    ),
) -> None:
    """Run the whole blueprint: routing, escalation, document QA, visual search, budgets."""
    from turnout.demo import DemoOptions, run_demo

    run_demo(DemoOptions(home=home, serve=serve, port=port, encoder=encoder), console())
