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
    from turnout.retrieval import EncoderOptions, load_encoder, quiet_transformers

    quiet_transformers()
    return load_encoder(spec, EncoderOptions(batch_size=batch_size))


def _text_encoder(spec: str) -> Any:
    from turnout.retrieval import load_text_encoder, quiet_transformers

    quiet_transformers()
    return load_text_encoder(spec)


def collection_encoders(
    collection: Collection, given: str | None, batch_size: int
) -> tuple[Any, Any]:
    """A collection's encoder and, for a document collection, its text encoder (or None).

    A text-only document collection's encoder is its text encoder: both are that one.
    """
    documents = collection.spec.documents
    if documents is not None and not documents.images:
        text = _text_encoder(given or documents.text_encoder)
        collection.check_encoder(text)
        collection.check_text_encoder(text)
        return text, text
    encoder = _collection_encoder(collection, given, batch_size)
    if documents is None:
        return encoder, None
    text = _text_encoder(documents.text_encoder)
    collection.check_text_encoder(text)
    return encoder, text


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
        pages = r.pages_text_layer + r.pages_ocr + r.pages_without_text
        if pages:
            screen.print(
                f"pages: {r.pages_text_layer:,} from the text layer, {r.pages_ocr:,} by OCR "
                f"({r.pages_low_confidence:,} below the confidence floor), "
                f"{r.pages_without_text:,} without text",
                highlight=False,
            )
        for warning in r.warnings:
            screen.print(f"warning: {warning}", highlight=False, markup=False)
        for path, reason in r.skipped:
            screen.print(f"skipped {path}: {reason}", highlight=False, markup=False)


def parse_weights(given: list[str] | None) -> dict[str, float] | None:
    """`--weight text=2 --weight bm25=1` (or `text=2,bm25=1`) as {retriever: weight}."""
    from turnout.core import InvalidInputError

    if not given:
        return None
    out: dict[str, float] = {}
    for text in given:
        for part in text.split(","):
            name, sep, value = part.partition("=")
            try:
                out[name.strip()] = float(value) if sep else float("nan")
            except ValueError:
                out[name.strip()] = float("nan")
            if out[name.strip()] != out[name.strip()]:
                raise InvalidInputError(
                    f"--weight {part!r}: expected RETRIEVER=NUMBER, e.g. --weight text=2"
                )
    return out


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
    quantization: str | None = typer.Option(
        None,
        "--quantization",
        help="A new Qdrant collection's dense codes: none, scalar, turbo4, turbo2 or binary "
        "(default: index.quantization).",
    ),
    no_text: bool = typer.Option(
        False, "--no-text", help="Do not index captions and page text as text items."
    ),
    text_encoder: str | None = typer.Option(
        None,
        "--text-encoder",
        help="New document collection: page text and passages embedded by this "
        "sentence-transformers model (minilm, a folder, hf:ID); alone, a text-only one.",
    ),
    no_bm25: bool = typer.Option(False, "--no-bm25", help="Document collection without BM25."),
    no_ocr: bool = typer.Option(False, "--no-ocr", help="Do not OCR pages without a text layer."),
    ocr_images: bool = typer.Option(
        False, "--ocr-images", help="Also OCR image files (photos of documents, screenshots)."
    ),
    min_confidence: float = typer.Option(
        60.0, "--min-ocr-confidence", help="OCR pages below this mean confidence are flagged."
    ),
    passage_words: int = typer.Option(80, "--passage-words", help="Words per passage."),
    passage_overlap: int = typer.Option(
        20, "--passage-overlap", help="Words shared by neighbours."
    ),
    fusion: str = typer.Option("rrf", "--fusion", help="Default fusion: rrf or weighted."),
    weight: list[str] = typer.Option(
        None, "--weight", help="Default weight per retriever, e.g. --weight text=2 (repeatable)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unusable file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index folders and files for a tenant; a rerun encodes only what is new or changed."""
    from turnout.core import InvalidInputError
    from turnout.retrieval.index import (
        CollectionNotFoundError,
        DocumentOptions,
        check_fusion,
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
    text_model: Any = None
    model: Any
    try:
        coll = open_collection(settings, collection)
    except CollectionNotFoundError:
        if not encoder and not text_encoder:
            raise InvalidInputError(
                f"collection {collection!r} does not exist yet: give --encoder (images, "
                "pages) and/or --text-encoder (page text and passages) to create it"
            ) from None
        weights = parse_weights(weight)
        check_fusion(fusion, weights, ["image", "text", "bm25"])
        documents = None
        if text_encoder:
            text_model = _text_encoder(text_encoder)
            documents = DocumentOptions(
                text_encoder=text_encoder,
                text_fingerprint=text_model.fingerprint,
                text_dim=text_model.dim if encoder else None,
                images=bool(encoder),
                lexical=not no_bm25,
                ocr=not no_ocr,
                ocr_images=ocr_images,
                min_ocr_confidence=min_confidence,
                passage_words=passage_words,
                passage_overlap=passage_overlap,
                fusion=fusion,  # type: ignore[arg-type]
                weights=weights,
            )
        model = _encoder(encoder, settings.index.batch_size) if encoder else text_model
        coll = create_collection(
            settings,
            collection,
            model.dim,
            encoder=model,
            freshness_slo_s=slo_s,
            backend=backend,
            documents=documents,
            quantization=quantization,  # type: ignore[arg-type]  # checked there
        )
        if documents is not None and not documents.images:
            text_model = model
    else:
        if quantization is not None and quantization != coll.spec.quantization:
            coll.close()
            raise InvalidInputError(
                f"collection {collection!r} has {coll.spec.quantization} codes, not "
                f"{quantization}: codes are fixed when a collection is created; drop "
                "--quantization, or index into a new collection"
            )
        if slo_s is not None:
            coll.spec = set_freshness_slo(settings, collection, slo_s)
        model, text_model = collection_encoders(coll, encoder, settings.index.batch_size)
    with coll:
        total = sum(1 for c in plan(coll, tenant, sources).changes if c.what != "deleted")
        with _Bar(total) as bar:
            report = index_sources(
                coll,
                model,
                sources,
                tenant=tenant,
                progress=bar,
                text_encoder=text_model,
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
        model, text_model = collection_encoders(coll, None, settings.index.batch_size)
        with _Bar(0) as bar:
            reports = run_refresh(
                coll,
                model,
                tenant=tenant,
                progress=bar,
                text_encoder=text_model,
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
    """Items, bytes, last refresh, pending changes, pages by text source and low-confidence
    OCR pages; exits 1 when the freshness SLO is broken."""
    from datetime import UTC, datetime

    from turnout.retrieval.index import freshness, open_collection

    state: CliState = ctx.obj
    with open_collection(state.settings, collection) as coll:
        report = freshness(coll, tenant=tenant)
        spec = coll.spec
    if as_json:
        extra = {
            "backend": spec.backend,
            "encoder": spec.encoder,
            "quantization": spec.quantization,
        }
        if spec.documents is not None:
            extra["text_encoder"] = spec.documents.text_encoder
        print(json.dumps({**report.to_json(), **extra}))
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
            f"collection {report.collection} ({spec.backend}, encoder {spec.encoder}"
            + (f", {spec.quantization} codes" if spec.quantization != "none" else "")
            + ")"
            + (f", tenant {tenant}" if tenant else ""),
            f"items: {report.items:,}   bytes: {report.bytes:,}   last refresh: {last}",
            f"pending: {report.pending} ({report.pending_new} new, {report.pending_changed} "
            f"changed, {report.pending_deleted} deleted); oldest unindexed change: "
            f"{_age(report.oldest_pending_age_s)}",
            f"failed sources: {report.failed}   skipped files: {report.skipped}",
        ]
        if spec.documents is not None:
            lines.append(
                f"pages: {report.pages:,} ({report.ocr_pages:,} by OCR); low-confidence OCR "
                f"pages: {report.low_confidence_pages:,}; pages without text: "
                f"{report.pages_without_text:,}"
            )
        lines.append(f"freshness SLO {slo}: {verdict}")
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
    retriever: list[str] = typer.Option(
        None,
        "--retriever",
        "-r",
        help="Document collections: image, text or bm25 (repeatable; default: all it has).",
    ),
    fusion: str | None = typer.Option(
        None, "--fusion", help="Document collections: rrf or weighted (default: the collection's)."
    ),
    weight: list[str] = typer.Option(
        None, "--weight", help="Document collections: RETRIEVER=WEIGHT (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Ranked hits with scores and provenance: text-to-image, image-to-image, image-to-text;
    on a document collection, pages fused across retrievers with their passages."""
    from turnout.retrieval.index import open_collection
    from turnout.retrieval.index import search as run_search

    state: CliState = ctx.obj
    settings = state.settings
    with open_collection(settings, collection) as coll:
        if coll.spec.documents is not None and image is None and modality is None:
            _hybrid(coll, query, tenant, k, encoder, retriever, fusion, weight, as_json)
            return
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


def _hybrid(
    coll: Collection,
    query: str | None,
    tenant: str,
    k: int,
    encoder: str | None,
    retrievers: list[str] | None,
    fusion: str | None,
    weight: list[str] | None,
    as_json: bool,
) -> None:
    from turnout.core import InvalidInputError
    from turnout.retrieval.index import choose_retrievers, hybrid_search

    if query is None or not query.strip():
        raise InvalidInputError("the query text is empty: give the text to search for")
    chosen = choose_retrievers(coll, retrievers or None)
    model: Any = None
    text_model: Any = None
    if chosen != ["bm25"]:  # BM25 alone needs no model
        model, text_model = collection_encoders(coll, encoder, 8)
    hits = hybrid_search(
        coll,
        model,
        text_model,
        tenant=tenant,
        text=query,
        k=k,
        retrievers=chosen,
        fusion=fusion,
        weights=parse_weights(weight),
    )
    if as_json:
        print(json.dumps([h.to_json() for h in hits], indent=2))
        return
    from rich.table import Table

    table = Table("#", "fused", "source", "page", *chosen, "best passage")
    for hit in hits:
        cells = [
            f"{hit.scores[r]:.3f} (#{hit.ranks[r]})" if r in hit.scores else "-" for r in chosen
        ]
        text = (hit.passages[0].item.text or "") if hit.passages else ""
        flag = " [low OCR confidence]" if hit.item.metadata.get("low_confidence") else ""
        table.add_row(
            str(hit.rank),
            f"{hit.score:.4f}",
            hit.item.source.source,
            str(hit.item.source.page or ""),
            *cells,
            text[:60] + ("..." if len(text) > 60 else "") + flag,
        )
    screen = console()
    screen.print(table)
    if not hits:
        screen.print(f"no pages for tenant {tenant!r} in collection {coll.name!r}")
