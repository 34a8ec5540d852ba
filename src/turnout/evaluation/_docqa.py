"""Document QA retrieval: page recall@k and MRR per retriever and for their fusion.

Questions are JSONL, one object a line: `question`, `doc` (the file, as indexed: its
path, a path relative to an indexed folder, or its bare name when that is unique) and
`page` (from 1), with an optional `answer`. Each question runs every retriever once
(`retrieve_each`); each retriever alone and the fusion of all of them rank pages, and
the rank of the right page gives recall@k and the reciprocal rank (0 beyond the deepest
k). Questions naming a document that is not indexed for the tenant, or a page it does not
have, are skipped and listed with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from turnout.core import InvalidInputError

from ._metrics import bootstrap_ci

if TYPE_CHECKING:
    from turnout.retrieval.index import Collection

FUSED = "fused"


@dataclass(frozen=True)
class DocQuestion:
    line: int
    question: str
    doc: str
    page: int
    answer: str | None = None


@dataclass(frozen=True)
class QuestionResult:
    """One question: the document it resolved to, and the right page's rank (from 1) in
    each retriever's ranking and the fused one (None: not in the top `depth`)."""

    question: DocQuestion
    source: str
    ranks: dict[str, int | None]
    top: list[tuple[str, int | None]]


@dataclass(frozen=True)
class RetrieverScore:
    name: str
    n: int
    recall: dict[int, float]
    ci: dict[int, tuple[float, float]]
    mrr: float


@dataclass
class DocQaReport:
    collection: str
    tenant: str
    backend: str
    ks: list[int]
    fusion: str
    retrievers: list[str]
    scores: list[RetrieverScore]
    questions: list[QuestionResult]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    created_at: str = ""

    @property
    def depth(self) -> int:
        return max(self.ks)

    def score(self, name: str) -> RetrieverScore:
        return next(s for s in self.scores if s.name == name)

    def misses(self, k: int) -> list[QuestionResult]:
        """Questions whose right page the fusion did not rank in its top k."""
        return [q for q in self.questions if (q.ranks[FUSED] or k + 1) > k]

    def to_dict(self, miss_k: int) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "tenant": self.tenant,
            "backend": self.backend,
            "created_at": self.created_at,
            "seconds": round(self.seconds, 3),
            "ks": self.ks,
            "fusion": self.fusion,
            "retrievers": self.retrievers,
            "questions": len(self.questions),
            "scores": [
                {
                    "retriever": s.name,
                    "n": s.n,
                    "recall": {str(k): v for k, v in s.recall.items()},
                    "recall_ci95": {str(k): list(v) for k, v in s.ci.items()},
                    f"mrr@{self.depth}": s.mrr,
                }
                for s in self.scores
            ],
            "miss_k": miss_k,
            "misses": [_question_json(q) for q in self.misses(miss_k)],
            "per_question": [_question_json(q) for q in self.questions],
            "skipped": [{"line": line, "reason": reason} for line, reason in self.skipped],
        }


def _question_json(q: QuestionResult) -> dict[str, Any]:
    return {
        "line": q.question.line,
        "question": q.question.question,
        "doc": q.question.doc,
        "source": q.source,
        "page": q.question.page,
        "answer": q.question.answer,
        "ranks": q.ranks,
        "top": [{"source": s, "page": p} for s, p in q.top],
    }


def load_questions(path: Path) -> list[DocQuestion]:
    """Read a questions file; a line that is not a question object is an error naming it."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise InvalidInputError(
            f"{path}: cannot read the questions ({exc.strerror or exc})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: not UTF-8 text ({exc})") from exc
    out: list[DocQuestion] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}, line {number}"
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidInputError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InvalidInputError(f"{where}: expected an object with question, doc and page")
        missing = [key for key in ("question", "doc", "page") if key not in data]
        if missing:
            raise InvalidInputError(f"{where}: missing {', '.join(missing)}")
        page = data["page"]
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise InvalidInputError(f"{where}: page must be a whole number from 1, got {page!r}")
        if not isinstance(data["question"], str) or not isinstance(data["doc"], str):
            raise InvalidInputError(f"{where}: question and doc must be strings")
        answer = data.get("answer")
        out.append(
            DocQuestion(
                number, data["question"], data["doc"], page, None if answer is None else str(answer)
            )
        )
    if not out:
        raise InvalidInputError(
            f"{path}: no questions (expected JSON lines with question, doc, page)"
        )
    return out


class _Documents:
    """The tenant's indexed documents and their page counts, to resolve `doc` and `page`."""

    def __init__(self, collection: Collection, tenant: str) -> None:
        manifest = collection.manifest
        self.sources = manifest.indexed_sources(tenant)
        self.pages: dict[str, int] = {}
        for record in manifest.page_records(tenant):
            self.pages[record.source] = max(self.pages.get(record.source, 0), record.page)

    def resolve(self, q: DocQuestion) -> tuple[str | None, str | None]:
        """(source, None) or (None, why the question cannot be scored)."""
        wanted = PurePath(q.doc.strip())
        if str(wanted) in self.sources:
            found = [str(wanted)]
        else:
            tail = wanted.parts
            found = [s for s in self.sources if PurePath(s).parts[-len(tail) :] == tail]
        if not found:
            known = ", ".join(PurePath(s).name for s in self.sources[:8]) or "none"
            return None, f"document {q.doc!r} is not indexed for this tenant (indexed: {known})"
        if len(found) > 1:
            return (
                None,
                f"document {q.doc!r} is ambiguous: {', '.join(found[:4])}; give more of its path",
            )
        source = found[0]
        pages = self.pages.get(source)
        if pages is None:
            return (
                None,
                f"document {q.doc!r} has no page records (index it into a document collection)",
            )
        if q.page > pages:
            return None, f"document {q.doc!r} has {pages} page(s); there is no page {q.page}"
        return source, None


def evaluate_docqa(
    collection: Collection,
    encoder: Any = None,
    text_encoder: Any = None,
    *,
    tenant: str,
    questions: Sequence[DocQuestion],
    ks: Sequence[int] = (1, 5, 10),
    retrievers: Sequence[str] | None = None,
    fusion: str | None = None,
    weights: Mapping[str, float] | None = None,
    candidates: int | None = None,
    bootstrap_resamples: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> DocQaReport:
    """Page recall@k and MRR of each retriever alone and of their fusion (module docstring)."""
    from turnout.retrieval.index import check_fusion, choose_retrievers, fuse_pages, retrieve_each

    if not ks or any(k < 1 for k in ks):
        raise InvalidInputError(f"--k: expected positive cut-offs, got {list(ks)}")
    ks = sorted(set(ks))
    depth = max(ks)
    documents = collection.documents()
    chosen = choose_retrievers(collection, retrievers)
    method = fusion or documents.fusion
    weight = check_fusion(method, weights if weights is not None else documents.weights, chosen)
    started = time.monotonic()
    resolver = _Documents(collection, tenant)
    results: list[QuestionResult] = []
    skipped: list[tuple[int, str]] = []
    for done, q in enumerate(questions, start=1):
        source, why = resolver.resolve(q)
        if not q.question.strip():
            source, why = None, "the question is empty"
        if source is None:
            skipped.append((q.line, why or "unknown"))
            continue
        ranked = retrieve_each(
            collection,
            encoder,
            text_encoder,
            tenant=tenant,
            text=q.question,
            retrievers=chosen,
            candidates=candidates or max(50, 10 * depth),
        )
        ranks: dict[str, int | None] = {}
        lists = {r: fuse_pages({r: hits}, k=depth) for r, hits in ranked.items()}
        lists[FUSED] = fuse_pages(
            ranked, method=method, weights=weight, rrf_k=documents.rrf_k, k=depth
        )
        for name, pages in lists.items():
            ranks[name] = next((p.rank for p in pages if p.key == (source, q.page)), None)
        top = [p.key for p in lists[FUSED][:3]]
        results.append(QuestionResult(q, source, ranks, top))
        if progress:
            progress(done, len(questions))
    if not results:
        reasons = "; ".join(f"line {line}: {why}" for line, why in skipped[:5])
        raise InvalidInputError(f"no question could be scored: {reasons}")
    scores = [_score(name, results, ks, bootstrap_resamples) for name in [*chosen, FUSED]]
    return DocQaReport(
        collection=collection.name,
        tenant=tenant,
        backend=collection.spec.backend,
        ks=list(ks),
        fusion=method,
        retrievers=chosen,
        scores=scores,
        questions=results,
        skipped=skipped,
        seconds=time.monotonic() - started,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _score(
    name: str, results: Sequence[QuestionResult], ks: Sequence[int], resamples: int
) -> RetrieverScore:
    ranks = np.array(
        [q.ranks[name] if q.ranks[name] is not None else 0 for q in results], dtype=np.int64
    )
    found = ranks > 0
    recall: dict[int, float] = {}
    ci: dict[int, tuple[float, float]] = {}
    for k in ks:
        hits = found & (ranks <= k)
        recall[k] = float(hits.mean())
        ci[k] = bootstrap_ci(hits, resamples=resamples)
    reciprocal = np.where(found, 1.0 / np.maximum(ranks, 1), 0.0)
    return RetrieverScore(name, len(results), recall, ci, float(reciprocal.mean()))
