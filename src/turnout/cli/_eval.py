"""`turnout eval retrieval`: recall@k of image-text encoders on a dataset, with a gallery;
`turnout eval docqa`: page recall@k and MRR of each retriever and their fusion on a
document collection, for one's own questions."""

from __future__ import annotations

from pathlib import Path

import typer

from ._context import CliState, console

app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)

_DEFAULT_KS = (1, 5, 10)


def _parse_ks(given: list[str] | None, extra: list[str]) -> list[int]:
    """`--k 1 5 10`, `--k 1 --k 5` and `--k 1,5,10` all mean the same."""
    from turnout.core import InvalidInputError

    if not given:
        if extra:
            raise InvalidInputError(f"unexpected argument(s): {' '.join(extra)}")
        return list(_DEFAULT_KS)
    ks = []
    for text in [*given, *extra]:
        for part in text.split(","):
            if not part.strip().isdigit() or int(part) < 1:
                raise InvalidInputError(
                    f"--k {text!r}: expected positive integers, e.g. --k 1 5 10"
                )
            ks.append(int(part))
    return ks


@app.command(
    "retrieval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
def retrieval(
    ctx: typer.Context,
    dataset: str = typer.Option(
        "flickr30k",
        "--dataset",
        "-d",
        help="flickr30k, coco, flickr30k:DIR, coco:DIR, karpathy:FILE.json, or a folder "
        "with captions.csv/.jsonl.",
    ),
    encoders: list[str] = typer.Option(
        ..., "--encoder", "-e", help="Hub id, hf:ID@REVISION or a model directory (repeatable)."
    ),
    k: list[str] = typer.Option(None, "--k", help="Cut-offs for recall@k (default: 1 5 10)."),
    out: Path = typer.Option(Path("turnout-eval"), "--out", "-o", help="Folder for the report."),
    split: str = typer.Option("test", "--split", help="Dataset split (Karpathy: test, val)."),
    limit: int | None = typer.Option(None, "--limit", help="Use N images (seeded sample)."),
    seed: int = typer.Option(0, "--seed", help="Seed for --limit and the bootstrap."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unreadable image."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, float16 or bfloat16."),
    batch_size: int = typer.Option(32, "--batch-size", help="Items per forward pass."),
    workers: int | None = typer.Option(
        None, "--workers", help="Image decoding threads (default: half the cores)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    streams: int | None = typer.Option(
        None, "--streams", help="Concurrent forward passes (default: 2 to 4 on CPU, 1 on GPU)."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Embedding cache folder (default: TURNOUT_HOME/cache)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Encode everything afresh."),
    gallery_k: int = typer.Option(1, "--gallery-k", help="Gallery shows misses of the top k."),
    gallery_limit: int = typer.Option(50, "--gallery-limit", help="Misses shown per direction."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the CIs."),
) -> None:
    """Recall@k of image-text encoders, both directions, with published figures and a gallery."""
    from turnout.evaluation import RichProgress, evaluate_retrieval, results_table, write_report
    from turnout.retrieval import (
        EmbeddingCache,
        EncoderOptions,
        best_device,
        load_dataset,
        quiet_transformers,
    )

    state: CliState = ctx.obj
    ks = _parse_ks(k, list(ctx.args))
    quiet_transformers()
    options = EncoderOptions(
        device=best_device() if device == "auto" else device,  # type: ignore[arg-type]
        dtype=dtype,  # type: ignore[arg-type]
        batch_size=batch_size,
        threads=threads,
        streams=streams,
        **({"workers": workers} if workers is not None else {}),
    )
    home = state.settings.home_dir
    cache = (
        None if no_cache else EmbeddingCache((cache_dir or home / "cache") / "embeddings.sqlite")
    )
    screen = console()
    with RichProgress() as progress:
        data = load_dataset(
            dataset, split=split, limit=limit, seed=seed, home=home, log=progress.log
        )
        report = evaluate_retrieval(
            data,
            encoders,
            ks=ks,
            options=options,
            cache=cache,
            strict=strict,
            progress=progress,
            bootstrap_resamples=bootstrap,
            seed=seed,
        )
    files = write_report(report, out, gallery_k=gallery_k, gallery_limit=gallery_limit)
    screen.print(results_table(report))
    screen.print("recall in percent, ± half the 95% bootstrap interval")
    for result in report.encoders:
        t = result.timings
        speed = f"{t.images_per_s:,.1f} images/s" if t.images_per_s else "images from cache"
        screen.print(
            f"{result.name}: {speed}, {t.images_cached:,} images and "
            f"{t.texts_cached:,} captions from cache"
        )
    written = [files.json, files.csv, files.markdown, *([files.gallery] if files.gallery else [])]
    screen.print("wrote " + ", ".join(str(p) for p in written))


@app.command(
    "docqa",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
def docqa(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-C", help="Document collection."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant whose documents to search."),
    questions: Path = typer.Option(
        ..., "--questions", "-q", help="JSONL: question, doc, page (from 1), optional answer."
    ),
    k: list[str] = typer.Option(None, "--k", help="Cut-offs for recall@k (default: 1 5 10)."),
    out: Path = typer.Option(Path("turnout-docqa"), "--out", "-o", help="Folder for the report."),
    retriever: list[str] = typer.Option(
        None, "--retriever", "-r", help="image, text, bm25 (repeatable; default: all it has)."
    ),
    fusion: str | None = typer.Option(
        None, "--fusion", help="rrf or weighted (default: the collection's)."
    ),
    weight: list[str] = typer.Option(None, "--weight", help="RETRIEVER=WEIGHT (repeatable)."),
    miss_k: int = typer.Option(5, "--miss-k", help="List questions the fusion missed in top k."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the CIs."),
) -> None:
    """Page recall@k and MRR per retriever and fused, side by side, with the misses."""
    from turnout.evaluation import (
        docqa_table,
        evaluate_docqa,
        load_questions,
        write_docqa_report,
    )
    from turnout.retrieval.index import choose_retrievers, open_collection

    from ._index import collection_encoders, parse_weights

    state: CliState = ctx.obj
    ks = _parse_ks(k, list(ctx.args))
    asked = load_questions(questions)
    screen = console()
    with open_collection(state.settings, collection) as coll:
        chosen = choose_retrievers(coll, retriever or None)
        encoder, text_encoder = (
            collection_encoders(coll, None, 8) if chosen != ["bm25"] else (None, None)
        )
        report = evaluate_docqa(
            coll,
            encoder,
            text_encoder,
            tenant=tenant,
            questions=asked,
            ks=ks,
            retrievers=chosen,
            fusion=fusion,
            weights=parse_weights(weight),
            bootstrap_resamples=bootstrap,
        )
    files = write_docqa_report(report, out, miss_k=miss_k)
    screen.print(docqa_table(report))
    screen.print(
        f"page recall in percent; {len(report.misses(miss_k))} question(s) missed by the "
        f"fusion's top {miss_k}; {len(report.skipped)} skipped",
        highlight=False,
    )
    for line, reason in report.skipped:
        screen.print(f"skipped line {line}: {reason}", highlight=False, markup=False)
    screen.print(f"wrote {files.json}, {files.markdown}, {files.html}", highlight=False)
