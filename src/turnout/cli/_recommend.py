"""`turnout recommend`: the cheapest model that meets a workload shape."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import typer

from ._context import CliState, console, usd


class ShapeName(StrEnum):
    assistant = "assistant"
    docqa = "docqa"
    visual_search = "visual-search"
    video = "video"
    on_prem = "on-prem"
    edge = "edge"


def recommend(
    ctx: typer.Context,
    shape: ShapeName = typer.Option(..., "--shape", help="The workload to choose a model for."),
    p95: float | None = typer.Option(None, "--p95", help="Latency limit in seconds (p95)."),
    max_cost: str | None = typer.Option(None, "--max-cost", help="Most USD per query."),
    modality: str | None = typer.Option(
        None, "--modality", help="Extra input modalities required, e.g. image,audio."
    ),
    self_hosted: bool = typer.Option(False, "--self-hosted", help="Self-hosted models only."),
    min_tier: int | None = typer.Option(
        None, "--min-tier", min=1, max=4, help="Override the shape's minimum quality tier."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Rank models cheapest first among those that meet the shape's constraints."""
    from turnout.core import InvalidInputError, load_shapes
    from turnout.core import recommend as rank

    state: CliState = ctx.obj
    limit = None
    if max_cost is not None:
        try:
            limit = Decimal(max_cost.lstrip("$"))
        except InvalidOperation:
            raise InvalidInputError(f"--max-cost {max_cost!r}: expected a number of USD") from None
    wanted = [m.strip() for m in (modality or "").split(",") if m.strip()]
    valid = ("text", "image", "audio", "video")
    for m in wanted:
        if m not in valid:
            raise InvalidInputError(f"--modality {m!r}: expected one of {', '.join(valid)}")
    spec = load_shapes()[shape.value]
    result = rank(
        state.catalog,
        spec,
        p95=p95,
        max_cost=limit,
        modalities=wanted,  # type: ignore[arg-type]
        self_hosted=self_hosted,
        min_tier=min_tier,
    )
    if as_json:
        print(
            json.dumps(
                {
                    "shape": spec.id,
                    "retrieval": spec.retrieval,
                    "p95_limit_seconds": result.p95_limit,
                    "max_cost_usd": None if limit is None else str(limit),
                    "ranked": [
                        {
                            "model": c.model.id,
                            "cost_usd": str(c.cost.exact),
                            "p95_seconds": c.p95,
                            "tier": c.model.tier,
                            "deploy": c.model.deploy,
                            "price_basis": c.model.price.basis,
                            "input_tokens": c.usage.input_tokens,
                            "output_tokens": c.usage.output_tokens,
                        }
                        for c in result.ranked
                    ],
                    "dropped": [{"model": d.model.id, "reason": d.reason} for d in result.dropped],
                },
                indent=2,
            )
        )
        return

    from rich.table import Table

    out = console()
    out.print(
        f"[bold]{spec.title}[/bold]: p95 <= {result.p95_limit:g} s"
        + (f", cost <= {usd(limit)}" if limit is not None else "")
        + f", tier >= {min_tier or spec.min_tier}, needs {', '.join(spec.requires)}"
    )
    out.print(f"retrieval stack: {spec.retrieval}")
    if result.ranked:
        table = Table(title="candidates, cheapest first", title_justify="left")
        for col in ("#", "model", "cost/query", "p95 s", "tier", "in tok", "out tok", "basis"):
            table.add_column(col, justify="left" if col in ("model", "basis") else "right")
        for i, c in enumerate(result.ranked, 1):
            table.add_row(
                str(i),
                c.model.id,
                usd(c.cost.exact),
                f"{c.p95:g}",
                str(c.model.tier),
                f"{c.usage.input_tokens:,}",
                f"{c.usage.output_tokens:,}",
                c.model.price.basis,
            )
        out.print(table)
        best = result.ranked[0]
        out.print(f"recommended: [bold]{best.model.id}[/bold] at {usd(best.cost.exact)} per query")
    else:
        out.print("[bold red]no model meets these constraints[/bold red]; see why below")
    if spec.seed_pick:
        out.print(f"seed matrix for comparison: {spec.seed_pick}")
    if result.dropped:
        table = Table(title="dropped", title_justify="left")
        table.add_column("model")
        table.add_column("why")
        for d in result.dropped:
            table.add_row(d.model.id, d.reason)
        out.print(table)
