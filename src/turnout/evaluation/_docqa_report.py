"""Writing a document QA report: results.json, results.md, report.html and the terminal table.

Retrievers side by side (page recall@k with 95% bootstrap intervals, and MRR), then the
questions whose right page the fusion missed in its top `miss_k`, with the rank each
retriever gave it, and the questions skipped with the reason.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from turnout.core import ConfigError

from ._docqa import FUSED, DocQaReport, QuestionResult
from ._report import pct

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class DocQaFiles:
    json: Path
    markdown: Path
    html: Path


def _title(report: DocQaReport) -> str:
    return (
        f"collection {report.collection} ({report.backend}), tenant {report.tenant}: "
        f"{len(report.questions):,} questions, {len(report.skipped):,} skipped; "
        f"fusion {report.fusion} of {', '.join(report.retrievers)}"
    )


def _rank(value: int | None, depth: int) -> str:
    return str(value) if value is not None else f">{depth}"


def docqa_table(report: DocQaReport) -> Table:
    from rich.table import Table

    table = Table(title=_title(report), title_justify="left")
    table.add_column("retriever")
    for k in report.ks:
        table.add_column(f"R@{k}", justify="right")
    table.add_column(f"MRR@{report.depth}", justify="right")
    for score in report.scores:
        cells = [pct(score.recall[k]) for k in report.ks]
        table.add_row(score.name, *cells, f"{score.mrr:.3f}")
    return table


def _miss_rows(report: DocQaReport, misses: list[QuestionResult]) -> list[list[str]]:
    names = [*report.retrievers, FUSED]
    rows = []
    for q in misses:
        top = ", ".join(f"{Path(s).name} p{p}" for s, p in q.top) or "-"
        rows.append(
            [
                str(q.question.line),
                q.question.question,
                f"{Path(q.source).name} p{q.question.page}",
                *[_rank(q.ranks[n], report.depth) for n in names],
                top,
            ]
        )
    return rows


def docqa_markdown(report: DocQaReport, miss_k: int) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    names = [*report.retrievers, FUSED]
    lines = [f"# Document QA retrieval: {_title(report)}", ""]
    lines.append(
        f"Created {report.created_at}. Page recall in percent with 95% bootstrap intervals; "
        f"MRR over the top {report.depth} pages."
    )
    lines += [
        "",
        "| retriever | " + " | ".join(f"R@{k}" for k in report.ks) + f" | MRR@{report.depth} |",
    ]
    lines.append("| --- | " + " | ".join("---:" for _ in report.ks) + " | ---: |")
    for s in report.scores:
        cells = [f"{pct(s.recall[k])} [{pct(s.ci[k][0])}, {pct(s.ci[k][1])}]" for k in report.ks]
        lines.append(f"| {s.name} | " + " | ".join(cells) + f" | {s.mrr:.3f} |")
    misses = report.misses(miss_k)
    lines += ["", f"## Misses: the right page not in the fused top {miss_k} ({len(misses)})", ""]
    if misses:
        lines.append("| line | question | right page | " + " | ".join(names) + " | fused top 3 |")
        lines.append("| ---: | --- | --- | " + " | ".join("---:" for _ in names) + " | --- |")
        for row in _miss_rows(report, misses):
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    else:
        lines.append("None.")
    if report.skipped:
        lines += ["", f"## Skipped questions ({len(report.skipped)})", ""]
        lines += [f"- line {line}: {cell(reason)}" for line, reason in report.skipped]
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px}
td.n{text-align:right}tr.fused td{font-weight:600}.muted{color:#777}
"""


def docqa_html(report: DocQaReport, miss_k: int) -> str:
    e = html.escape
    names = [*report.retrievers, FUSED]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Document QA: {e(report.collection)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Document QA retrieval</h1><p>{e(_title(report))}</p>",
        f"<p class='muted'>Created {e(report.created_at)}. Page recall in percent "
        f"[95% bootstrap interval]; MRR over the top {report.depth} pages.</p>",
        "<table><tr><th>retriever</th>"
        + "".join(f"<th>R@{k}</th>" for k in report.ks)
        + f"<th>MRR@{report.depth}</th></tr>",
    ]
    for s in report.scores:
        cls = " class='fused'" if s.name == FUSED else ""
        cells = "".join(
            f"<td class='n'>{pct(s.recall[k])} <span class='muted'>[{pct(s.ci[k][0])}, "
            f"{pct(s.ci[k][1])}]</span></td>"
            for k in report.ks
        )
        out.append(f"<tr{cls}><td>{e(s.name)}</td>{cells}<td class='n'>{s.mrr:.3f}</td></tr>")
    out.append("</table>")
    misses = report.misses(miss_k)
    out.append(f"<h2>Misses: the right page not in the fused top {miss_k} ({len(misses)})</h2>")
    if misses:
        out.append(
            "<table><tr><th>line</th><th>question</th><th>right page</th>"
            + "".join(f"<th>{e(n)} rank</th>" for n in names)
            + "<th>fused top 3</th></tr>"
        )
        for row in _miss_rows(report, misses):
            out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    if report.skipped:
        out.append(f"<h2>Skipped questions ({len(report.skipped)})</h2><ul>")
        out += [f"<li>line {line}: {e(reason)}</li>" for line, reason in report.skipped]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_docqa_report(report: DocQaReport, out_dir: Path, *, miss_k: int = 5) -> DocQaFiles:
    """Write results.json, results.md and report.html under `out_dir`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = DocQaFiles(
            out_dir / "results.json", out_dir / "results.md", out_dir / "report.html"
        )
        data = report.to_dict(miss_k)
        files.json.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        files.markdown.write_text(docqa_markdown(report, miss_k), "utf-8")
        files.html.write_text(docqa_html(report, miss_k), "utf-8")
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot write the report: {exc.strerror or exc}") from exc
    return files
