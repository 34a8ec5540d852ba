"""`turnout tokens`: image tokens and cost per image, read from headers only."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._context import CliState, console, usd


def _parse_size(text: str) -> tuple[int, int]:
    from turnout.core import InvalidSizeError, check_size

    parts = text.lower().replace("\N{MULTIPLICATION SIGN}", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
        check_size(width, height)
    except ValueError:
        raise InvalidSizeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1024x768") from None
    except InvalidSizeError as exc:
        raise InvalidSizeError(f"--size {text}: {exc}") from None
    return width, height


def tokens(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(None, help="Image files (only headers are read)."),
    model: str = typer.Option(..., "--model", "-m", help="Model id or alias from the catalog."),
    detail: str = typer.Option(
        "auto", "--detail", "-d", help="low, high or auto (Gemini 3 also medium, ultra_high)."
    ),
    size: list[str] = typer.Option(
        None, "--size", help="Count an image of WIDTHxHEIGHT pixels without a file (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    explain: bool = typer.Option(False, "--explain", help="Show each step of the rule."),
) -> None:
    """Count the input tokens and cost of images for a model."""
    from turnout.core import (
        InvalidImageError,
        InvalidInputError,
        Usage,
        cost,
        count_image_tokens,
        parse_detail,
        read_image_size,
    )

    state: CliState = ctx.obj
    card = state.catalog.get(model)
    level = parse_detail(detail)
    if not images and not size:
        raise InvalidInputError("give at least one IMAGE file or --size WIDTHxHEIGHT")

    sources: list[tuple[str, int, int]] = []
    for path in images or []:
        try:
            with path.open("rb") as fh:
                found = read_image_size(fh, name=str(path))
        except FileNotFoundError:
            raise InvalidImageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InvalidImageError(f"{path}: is a directory, not an image") from None
        except PermissionError:
            raise InvalidImageError(f"{path}: permission denied") from None
        sources.append((str(path), found.width, found.height))
    for text in size or []:
        sources.append((f"{text}", *_parse_size(text)))

    rows = []
    for name, width, height in sources:
        counted = count_image_tokens(card, width, height, level)
        each = cost(Usage(image_input_tokens=counted.tokens, requests=0), card)
        rows.append((name, counted, each))
    total_tokens = sum(c.tokens for _, c, _ in rows)
    total = cost(Usage(image_input_tokens=total_tokens, requests=0), card)

    if as_json:
        print(
            json.dumps(
                {
                    "model": card.id,
                    "detail": level.value,
                    "images": [
                        {
                            "image": name,
                            "width": c.width,
                            "height": c.height,
                            "processed_width": c.processed_size[0],
                            "processed_height": c.processed_size[1],
                            "detail": c.detail.value,
                            "rule": c.rule,
                            "documented_rule": c.documented,
                            "tokens": c.tokens,
                            "cost_usd": str(each.exact),
                            "steps": list(c.steps),
                        }
                        for name, c, each in rows
                    ],
                    "total_tokens": total_tokens,
                    "total_cost_usd": str(total.total),
                },
                indent=2,
            )
        )
        return

    from rich.table import Table

    table = Table(title=f"{card.name} ({card.id}), detail={level.value}", title_justify="left")
    for col in ("image", "size", "processed", "detail", "tokens", "cost"):
        table.add_column(col, justify="right" if col in ("tokens", "cost") else "left")
    for name, c, each in rows:
        table.add_row(
            name,
            f"{c.width}x{c.height}",
            f"{c.processed_size[0]}x{c.processed_size[1]}",
            c.detail.value,
            f"{c.tokens:,}",
            usd(each.exact),
        )
    table.add_section()
    table.add_row("total", "", "", "", f"{total_tokens:,}", usd(total.total))
    out = console()
    out.print(table)
    price = card.price.image_input if card.price.image_input is not None else card.price.input
    out.print(
        f"image input priced at ${price} per million tokens ({card.price.source}, "
        f"as of {card.price.as_of})"
    )
    if any(not c.documented for _, c, _ in rows):
        out.print(
            "note: this model's rule is derived from its processor config, not a billing rule"
        )
    if explain:
        for name, c, _ in rows:
            out.print(f"[bold]{name}[/bold] ({c.rule})")
            for step in c.steps:
                out.print(f"  - {step}")
