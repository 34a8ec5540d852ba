"""`turnout index add|refresh|status` and `turnout search`: build, keep fresh and query indexes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._context import CliState, console

if TYPE_CHECKING:
    from turnout.core import Settings
    from turnout.retrieval.index import Collection, IngestReport

app = typer.Typer(help="Build and keep fresh multimodal vector indexes.", no_args_is_help=True)


def _encoder(spec: str, batch_size: int) -> Any:
    from turnout.retrieval import EncoderOptions, load_encoder

    from ._eval import _quiet_transformers

    _quiet_transformers()
    return load_encoder(spec, EncoderOptions(batch_size=batch_size))


def _collection_encoder(collection: Collection, given: str | None, batch_size: int) -> Any:
    """The encoder to use with a collection: the one it records, or a given one (checked)."""
    from turnout.core import InvalidInputError

    spec = given or collection.spec.encoder
    if not spec:
        raise InvalidInputError(
            f"collection {collection.name!r} records no encoder; give --encoder"
        )
    encoder = _encoder(spec, batch_size)
    collection.check_encoder(encoder)
    return encoder


def _options(settings: Settings, strict: bool, with_text: bool) -> dict[str, Any]:
    return {
        "batch_size": settings.index.batch_size,
        "max_pixels": settings.index.max_image_pixels,
        "pdf_scale": settings.index.pdf_scale,
        "strict": strict,
        "with_text": with_text,
    }


class _Bar:
    """A rich progress bar over sources, with items encoded and items per second."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sources, {task.fields[items]:,} items, {task.fields[rate]} items/s"),
            TimeElapsedColumn(),
            console=console() if sys.stderr.isatty() else None,
            disable=not sys.stderr.isatty(),
            transient=False,
        )
        self.task = self.progress.add_task("index", total=total or None, items=0, rate="-")
        self.items = 0

    def __call__(self, sources: int, items: int) -> None:
        self.items += items
        task = self.progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self.items / elapsed:,.1f}" if elapsed > 0 else "-"
        self.progress.update(self.task, advance=sources, items=self.items, rate=rate)

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _print_report(reports: list[IngestReport], as_json: bool) -> None:
    if as_json:
        out = [
            {**r.__dict__, "skipped": [list(s) for s in r.skipped], "items_per_s": r.items_per_s}
            for r in reports
        ]
        print(json.dumps(out, indent=2))
        return
    screen = console()
    for r in reports:
        screen.print(
            f"{r.collection} / {r.tenant}: {r.sources_new} new, {r.sources_changed} changed, "
            f"{r.sources_deleted} deleted, {r.sources_unchanged} unchanged sources; "
            f"{r.items_written:,} items written, {r.items_removed:,} removed in "
            f"{r.seconds:.1f} s ({r.items_per_s:,.1f} items/s)",
            highlight=False,
        )
        for path, reason in r.skipped:
            screen.print(f"skipped {path}: {reason}", highlight=False, markup=False)


@app.command("add")
def add(
    ctx: typer.Context,
    sources: list[Path] = typer.Argument(..., help="Folders of images, image files, PDFs."),
    collection: str = typer.Option(..., "--collection", "-C", help="Collection name."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant that owns these items."),
    encoder: str | None = typer.Option(
        None,
        "--encoder",
        "-e",
        help="Hub id, hf:ID@REV or model folder (required for a new collection).",
    ),
    slo: str | None = typer.Option(
        None, "--slo", help="Freshness SLO for the collection, e.g. 1h, 15m, 2d."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="edge, server or faiss for a new collection (default: settings)."
    ),
    no_text: bool = typer.Option(
        False, "--no-text", help="Do not index captions and page text as text items."
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unusable file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index folders and files for a tenant; a rerun encodes only what is new or changed."""
    from turnout.core import InvalidInputError
    from turnout.retrieval.index import (
        CollectionNotFoundError,
        create_collection,
        index_sources,
        open_collection,
        parse_duration,
        plan,
        set_freshness_slo,
    )

    state: CliState = ctx.obj
    settings = state.settings
    slo_s = parse_duration(slo) if slo else None
    for source in sources:
        if not source.exists():
            raise InvalidInputError(f"{source}: no such file or folder")
    try:
        coll = open_collection(settings, collection)
    except CollectionNotFoundError:
        if not encoder:
            raise InvalidInputError(
                f"collection {collection!r} does not exist yet: give --encoder to create it"
            ) from None
        model = _encoder(encoder, settings.index.batch_size)
        coll = create_collection(
            settings,
            collection,
            model.dim,
            encoder=model,
            freshness_slo_s=slo_s,
            backend=backend,
        )
    else:
        if slo_s is not None:
            coll.spec = set_freshness_slo(settings, collection, slo_s)
        model = _collection_encoder(coll, encoder, settings.index.batch_size)
    with coll:
        total = sum(1 for c in plan(coll, tenant, sources).changes if c.what != "deleted")
        with _Bar(total) as bar:
            report = index_sources(
                coll,
                model,
                sources,
                tenant=tenant,
                progress=bar,
                **_options(settings, strict, not no_text),
            )
    _print_report([report], as_json)


@app.command("refresh")
def refresh(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-C", help="Collection name."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant's sources."),
    no_text: bool = typer.Option(False, "--no-text", help="Do not index captions or page text."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index what was added or changed at the sources and remove what was deleted."""
    from turnout.retrieval.index import open_collection
    from turnout.retrieval.index import refresh as run_refresh

    state: CliState = ctx.obj
    settings = state.settings
    with open_collection(settings, collection) as coll:
        model = _collection_encoder(coll, None, settings.index.batch_size)
        with _Bar(0) as bar:
            reports = run_refresh(
                coll,
                model,
                tenant=tenant,
                progress=bar,
                **_options(settings, False, not no_text),
            )
    _print_report(reports, as_json)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@app.command("status")
def status(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-C", help="Collection name."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Items, bytes, last refresh, pending changes; exits 1 when the freshness SLO is broken."""
    from datetime import UTC, datetime

    from turnout.retrieval.index import freshness, open_collection

    state: CliState = ctx.obj
    with open_collection(state.settings, collection) as coll:
        report = freshness(coll, tenant=tenant)
        spec = coll.spec
    if as_json:
        print(json.dumps({**report.to_json(), "backend": spec.backend, "encoder": spec.encoder}))
    else:
        screen = console()
        last = (
            datetime.fromtimestamp(report.last_refresh, UTC).isoformat(timespec="seconds")
            if report.last_refresh
            else "never"
        )
        slo = _age(report.slo_s) if report.slo_s else "none set"
        verdict = "holds" if report.slo_ok else "BROKEN"
        lines = [
            f"collection {report.collection} ({spec.backend}, encoder {spec.encoder})"
            + (f", tenant {tenant}" if tenant else ""),
            f"items: {report.items:,}   bytes: {report.bytes:,}   last refresh: {last}",
            f"pending: {report.pending} ({report.pending_new} new, {report.pending_changed} "
            f"changed, {report.pending_deleted} deleted); oldest unindexed change: "
            f"{_age(report.oldest_pending_age_s)}",
            f"failed sources: {report.failed}   skipped files: {report.skipped}",
            f"freshness SLO {slo}: {verdict}",
        ]
        for line in lines:
            screen.print(line, highlight=False, markup=False)
    if not report.slo_ok:
        raise typer.Exit(1)


def search(
    ctx: typer.Context,
    query: str | None = typer.Argument(None, help="Text to search for."),
    collection: str = typer.Option(..., "--collection", "-C", help="Collection name."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant whose items to search."),
    k: int = typer.Option(10, "-k", "--k", help="How many hits."),
    image: Path | None = typer.Option(None, "--image", help="Search by this image instead."),
    modality: str | None = typer.Option(
        None, "--modality", help="Only image, page or text items (text: image-to-text)."
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", "-e", help="Encoder (default: the collection's; another is refused)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Ranked hits with scores and provenance: text-to-image, image-to-image, image-to-text."""
    from turnout.retrieval.index import open_collection
    from turnout.retrieval.index import search as run_search

    state: CliState = ctx.obj
    settings = state.settings
    with open_collection(settings, collection) as coll:
        model = _collection_encoder(coll, encoder, 8)
        hits = run_search(
            coll,
            model,
            tenant=tenant,
            text=query,
            image=image,
            k=k,
            modality=modality,
            max_pixels=settings.index.max_image_pixels,
        )
    if as_json:
        print(json.dumps([h.to_json() for h in hits], indent=2))
        return
    from rich.table import Table

    table = Table("#", "score", "modality", "source", "page", "text")
    for hit in hits:
        item = hit.item
        text = (item.text or "").replace("\n", " ")
        table.add_row(
            str(hit.rank),
            f"{hit.score:.4f}",
            item.modality,
            item.source.source,
            str(item.source.page or ""),
            text[:60] + ("..." if len(text) > 60 else ""),
        )
    screen = console()
    screen.print(table)
    if not hits:
        screen.print(f"no items for tenant {tenant!r} in collection {collection!r}")
