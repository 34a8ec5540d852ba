"""The `turnout` command: parses arguments and calls library functions.

Command modules import `turnout.core` inside their functions, so `turnout --help`
stays fast; a TurnoutError becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import _catalog, _demo, _eval, _governance, _index, _recommend, _serve, _tokens
from ._context import CliState

app = typer.Typer(
    name="turnout",
    help="A gateway and toolkit for multimodal LLM and RAG products.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_catalog.app, name="catalog")
app.add_typer(_eval.app, name="eval")
app.add_typer(_governance.tenants, name="tenants")
app.add_typer(_governance.keys, name="keys")
app.command("spend")(_governance.spend)
app.add_typer(_index.app, name="index")
app.command("search")(_index.search)
app.command("tokens")(_tokens.tokens)
app.command("recommend")(_recommend.recommend)
app.command("demo")(_demo.demo)
app.command("serve")(_serve.serve)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Settings file (default: ./turnout.yaml or $TURNOUT_CONFIG)."
    ),
) -> None:
    ctx.obj = CliState(config)


def main() -> None:
    from turnout.core import TurnoutError

    try:
        app()
    except TurnoutError as exc:
        print(f"turnout: error: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["app", "main"]
