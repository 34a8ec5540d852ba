"""`turnout eval docqa`: page recall@k and MRR per retriever and fused, on known pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnout.core import InvalidInputError
from turnout.evaluation import evaluate_docqa, load_questions, write_docqa_report

from ..cli import run

QUESTIONS = [
    {
        "question": "When does finance pay approved supplier invoices?",
        "doc": "manual.pdf",
        "page": 2,
    },
    {"question": "Which class should employees book trains in?", "doc": "manual.pdf", "page": 3},
    {"question": "Where are flammable liquids stored?", "doc": "manual.pdf", "page": 4},
    {
        "question": "What should be inspected on the hydraulic pumps?",
        "doc": "manual.pdf",
        "page": 1,
    },
    {"question": "When was the foghorn tested?", "doc": "scans/scans.pdf", "page": 1},
    {"question": "What does the cider press need?", "doc": "scans.pdf", "page": 2},
    {"question": "When should supers be added to the hives?", "doc": "scans.pdf", "page": 3},
]
BAD = [
    {"question": "What is on page nine?", "doc": "manual.pdf", "page": 9},
    {"question": "Is this indexed?", "doc": "missing.pdf", "page": 1},
    {"question": "  ", "doc": "manual.pdf", "page": 1},
]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_docqa_from_the_command_line(tmp_path: Path, docs: Path) -> None:
    common = ["--collection", "manuals", "--tenant", "acme"]
    added = run(
        "index", "add", str(docs), *common, "--text-encoder", "minilm", "--backend", "faiss",
        timeout=240,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "4 from the text layer, 4 by OCR (1 below the confidence floor)" in added.stdout

    status = run("index", "status", *common)
    assert "low-confidence OCR pages: 1" in status.stdout, status.stdout

    found = run("search", "foghorn storm", *common, "-k", "2", "--json", timeout=120)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["page"] == 1 and hits[0]["source"].endswith("scans.pdf")
    assert hits[0]["passages"][0]["box"] and set(hits[0]["scores"]) == {"text", "bm25"}

    empty = run("search", " ", *common)
    assert empty.returncode == 2 and "query text is empty" in empty.stderr

    questions = _write(tmp_path / "q.jsonl", QUESTIONS + BAD)
    out = tmp_path / "report"
    done = run(
        "eval", "docqa", *common, "--questions", str(questions), "--k", "1", "3", "--out",
        str(out), "--bootstrap", "50", timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 skipped" in done.stdout and "there is no page 9" in done.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["questions"] == 7 and data["ks"] == [1, 3]
    scores = {s["retriever"]: s for s in data["scores"]}
    assert set(scores) == {"text", "bm25", "fused"}
    assert scores["fused"]["recall"]["3"] == 1.0
    assert scores["text"]["recall"]["3"] == 1.0
    assert 0 < scores["fused"]["mrr@3"] <= 1
    reasons = {s["line"]: s["reason"] for s in data["skipped"]}
    assert "has 4 page(s); there is no page 9" in reasons[8]
    assert "'missing.pdf' is not indexed" in reasons[9]
    assert "question is empty" in reasons[10]
    markdown = (out / "results.md").read_text()
    assert "| fused |" in markdown and "Skipped questions (3)" in markdown
    assert "<table>" in (out / "report.html").read_text()


def test_recall_and_mrr_are_the_ranks_of_the_right_pages(
    tmp_path: Path, docs: Path, minilm: Any
) -> None:
    from turnout.retrieval.index import DocumentOptions, create_collection, index_sources

    from ..index.helpers import settings_for

    settings = settings_for(tmp_path, "edge")
    options = DocumentOptions("minilm", minilm.fingerprint, images=False)
    with create_collection(settings, "docs", minilm.dim, encoder=minilm, documents=options) as c:
        index_sources(c, minilm, [docs / "manual.pdf"], tenant="acme")
        # Every question asks for page 1: its recall@1 is the share ranked first.
        rows = [dict(q, page=1) for q in QUESTIONS[:4]]
        report = evaluate_docqa(
            c, minilm, tenant="acme", questions=load_questions(_write(tmp_path / "q", rows)),
            ks=[1, 4], bootstrap_resamples=20,
        )  # fmt: skip
        fused = report.score("fused")
        ranks = [q.ranks["fused"] for q in report.questions]
        assert ranks[3] == 1 and all(r is not None and r > 1 for r in ranks[:3])
        assert fused.recall == {1: 0.25, 4: 1.0}
        assert fused.mrr == pytest.approx(sum(1 / r for r in ranks if r) / 4)
        assert [q.question.line for q in report.misses(1)] == [1, 2, 3]
        files = write_docqa_report(report, tmp_path / "out", miss_k=1)
        assert "Misses: the right page not in the fused top 1 (3)" in files.markdown.read_text()


def test_questions_files_are_checked_line_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text(
        '{"question": "a", "doc": "d.pdf", "page": 1}\n{"question": "b", "doc": "d.pdf"}\n'
    )
    with pytest.raises(InvalidInputError, match=r"line 2: missing page"):
        load_questions(bad)
    bad.write_text('{"question": "a", "doc": "d.pdf", "page": 0}\n')
    with pytest.raises(InvalidInputError, match=r"line 1: page must be a whole number from 1"):
        load_questions(bad)
    bad.write_text("not json\n")
    with pytest.raises(InvalidInputError, match=r"line 1: not JSON"):
        load_questions(bad)
    bad.write_text("\n\n")
    with pytest.raises(InvalidInputError, match="no questions"):
        load_questions(bad)
