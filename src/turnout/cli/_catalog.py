"""`turnout catalog list|show`: what each model accepts, charges and how fast it answers."""

from __future__ import annotations

import json

import typer

from ._context import CliState, console

app = typer.Typer(help="Browse the model catalog.", no_args_is_help=True)

_SAMPLE_SIZES = ((512, 512), (1024, 1024), (2048, 4096))


@app.command("list")
def list_models(
    ctx: typer.Context,
    provider: str | None = typer.Option(None, "--provider", help="Only this provider's models."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """List every model in the catalog."""
    state: CliState = ctx.obj
    models = [m for m in state.catalog if provider is None or m.provider == provider]
    if as_json:
        print(json.dumps([m.model_dump(mode="json") for m in models], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{len(models)} models")
    for col in (
        "model",
        "provider",
        "kind",
        "tier",
        "input",
        "in $/M",
        "out $/M",
        "image rule",
        "p95 s",
    ):
        table.add_column(col, justify="right" if "$" in col or col in ("tier", "p95 s") else "left")
    for m in models:
        rule = m.image_tokens.rule if m.image_tokens else "-"
        table.add_row(
            m.id,
            m.provider,
            m.kind,
            str(m.tier),
            ",".join(m.modalities.input),
            str(m.price.input),
            str(m.price.output),
            rule,
            f"{m.latency.p95:g}",
        )
    console().print(table)


@app.command("show")
def show_model(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model id or alias."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Show one model: prices with their source, image-token rule, limits, latency."""
    from turnout.core import Detail, count_image_tokens

    state: CliState = ctx.obj
    m = state.catalog.get(model)
    if as_json:
        print(json.dumps(m.model_dump(mode="json"), indent=2))
        return
    out = console()
    out.print(
        f"[bold]{m.name}[/bold]  id={m.id}  provider={m.provider}  kind={m.kind}  tier={m.tier}"
    )
    if m.aliases:
        out.print(f"aliases: {', '.join(m.aliases)}")
    out.print(
        f"input: {', '.join(m.modalities.input)}   output: {', '.join(m.modalities.output) or '-'}"
    )
    out.print(
        f"context window: {m.context_window:,} tokens"
        + (f", max output {m.max_output_tokens:,}" if m.max_output_tokens else "")
    )
    p = m.price
    out.print(
        f"price ({p.basis}), USD per 1M tokens: input {p.input}, output {p.output}"
        + (f", cached input {p.cached_input}" if p.cached_input is not None else "")
    )
    for label, value in (
        ("image input", p.image_input),
        ("audio input", p.audio_input),
        ("video input", p.video_input),
        ("audio output", p.audio_output),
    ):
        if value is not None:
            out.print(f"  {label}: {value}")
    if p.per_request:
        out.print(f"  per request: ${p.per_request}")
    if p.long_context:
        lc = p.long_context
        out.print(
            f"  above {lc.above_input_tokens:,} input tokens: input {lc.input}, output {lc.output}"
        )
    if p.assumption:
        out.print(f"  assumption: {p.assumption}")
    out.print(f"  source: {p.source} (as of {p.as_of})")
    out.print(
        f"latency prior: p50 {m.latency.p50:g} s, p95 {m.latency.p95:g} s ({m.latency.source})"
    )
    if m.regions:
        out.print(f"regions: {', '.join(m.regions)}   deploy: {m.deploy}")
    if m.image_tokens is not None and m.kind == "chat":
        params = m.image_tokens.model_dump(exclude={"rule", "documented"})
        out.print(
            f"image tokens: rule {m.image_tokens.rule} {params}"
            + ("" if m.image_tokens.documented else " (derived, not a billing rule)")
        )
        for w, h in _SAMPLE_SIZES:
            counted = count_image_tokens(m, w, h, Detail.AUTO)
            out.print(f"  {w}x{h} auto: {counted.tokens:,} tokens")
    if m.notes:
        out.print(m.notes)
