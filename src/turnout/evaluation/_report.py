"""Writing a retrieval report: results.json, results.csv, results.md, and the terminal table."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from turnout.core import ConfigError

from ._results import ARROWS, DIRECTIONS, EncoderResult, Recall, RetrievalReport

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    csv: Path
    markdown: Path
    gallery: Path | None


def pct(value: float | None, places: int = 1) -> str:
    return "" if value is None or math.isnan(value) else f"{100 * value:.{places}f}"


def signed(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{100 * value:+.1f}"


def half_width(r: Recall) -> str:
    if math.isnan(r.ci_low):
        return ""
    return f"±{100 * max(r.value - r.ci_low, r.ci_high - r.value):.1f}"


def summary_line(report: RetrievalReport) -> str:
    d = report.dataset
    split = f" {d['split']}" if d.get("split") else ""
    limit = f", --limit {d['limit']} (seed {d['seed']})" if d.get("limit") else ""
    return (
        f"{d['name']}{split}: {d['images']:,} images, {d['captions']:,} captions{limit}; "
        f"{len(report.skipped)} unreadable image(s) skipped"
    )


def results_table(report: RetrievalReport) -> Table:
    """Recall in percent (± half the 95% bootstrap interval), published and difference rows."""
    from rich.table import Table

    table = Table(title=summary_line(report), title_justify="left")
    table.add_column("encoder")
    table.add_column("")
    for direction in DIRECTIONS:
        for k in report.ks:
            table.add_column(f"{ARROWS[direction]} R@{k}", justify="right")
    table.add_column("truncated", justify="right")
    for result in report.encoders:
        measured = [
            f"{pct(r.value)} {half_width(r)}"
            for d in DIRECTIONS
            for r in result.direction(d).recall
        ]
        table.add_row(result.name, "measured", *measured, str(result.truncated_captions))
        if result.published is not None:
            published = [pct(result.published_value(d, k)) for d in DIRECTIONS for k in report.ks]
            diffs = [
                _difference(result, d, r) for d in DIRECTIONS for r in result.direction(d).recall
            ]
            table.add_row("", "published", *published, "")
            table.add_row("", "difference", *diffs, "")
        table.add_section()
    return table


def _difference(result: EncoderResult, direction: str, r: Recall) -> str:
    pub = result.published_value(direction, r.k)  # type: ignore[arg-type]
    return "" if pub is None else signed(r.value - pub)


def results_csv(report: RetrievalReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([
        "encoder", "model_id", "revision", "direction", "group", "k", "n", "recall",
        "ci_low", "ci_high", "published", "difference",
    ])  # fmt: skip
    for result in report.encoders:
        ident = [
            result.name,
            result.identity.get("model_id", ""),
            result.identity.get("revision", ""),
        ]
        for direction in DIRECTIONS:
            rows = result.direction(direction)
            for r in rows.recall:
                pub = result.published_value(direction, r.k)
                writer.writerow([
                    *ident, direction, "all", r.k, rows.n_queries, f"{r.value:.6f}",
                    f"{r.ci_low:.6f}", f"{r.ci_high:.6f}",
                    "" if pub is None else f"{pub:.6f}",
                    "" if pub is None else f"{r.value - pub:.6f}",
                ])  # fmt: skip
        for g in result.by_caption_type:
            for k, value in g.recall.items():
                writer.writerow(
                    [*ident, g.direction, g.group, k, g.n, f"{value:.6f}", "", "", "", ""]
                )
    return out.getvalue()


def results_markdown(report: RetrievalReport) -> str:
    lines = [f"# Retrieval evaluation: {summary_line(report)}", ""]
    lines.append(f"Created {report.created_at}. Recall in percent, with 95% bootstrap intervals.")
    lines.append("")
    for direction in DIRECTIONS:
        ks = report.ks
        lines.append(f"## {ARROWS[direction]} ({direction.replace('_', ' ')})")
        lines.append("")
        lines.append("| encoder | queries | " + " | ".join(f"R@{k}" for k in ks) + " |")
        lines.append("| --- | ---: | " + " | ".join("---:" for _ in ks) + " |")
        for result in report.encoders:
            rows = result.direction(direction)
            cells = [f"{pct(r.value)} [{pct(r.ci_low)}, {pct(r.ci_high)}]" for r in rows.recall]
            lines.append(f"| {result.name} | {rows.n_queries:,} | " + " | ".join(cells) + " |")
            if result.published is not None:
                pub = [pct(result.published_value(direction, k)) for k in ks]
                diff = [_difference(result, direction, r) for r in rows.recall]
                lines.append("| published | | " + " | ".join(pub) + " |")
                lines.append("| difference | | " + " | ".join(diff) + " |")
        lines.append("")
    lines.append("## Recall by caption type")
    lines.append("")
    lines.append(
        "| encoder | direction | group | n | " + " | ".join(f"R@{k}" for k in report.ks) + " |"
    )
    lines.append("| --- | --- | --- | ---: | " + " | ".join("---:" for _ in report.ks) + " |")
    for result in report.encoders:
        for g in result.by_caption_type:
            values = " | ".join(pct(g.recall[k]) for k in report.ks)
            lines.append(
                f"| {result.name} | {ARROWS[g.direction]} | {g.group} | {g.n:,} | {values} |"
            )
    lines.append("")
    lines.append("## Speed")
    lines.append("")
    lines.append(
        "| encoder | images/s | texts/s | from cache (images, texts) | truncated captions |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for result in report.encoders:
        t = result.timings
        ips = f"{t.images_per_s:,.1f}" if t.images_per_s else "-"
        tps = f"{t.texts_per_s:,.1f}" if t.texts_per_s else "-"
        lines.append(
            f"| {result.name} | {ips} | {tps} | {t.images_cached:,}, {t.texts_cached:,} "
            f"| {result.truncated_captions:,} |"
        )
    if report.skipped:
        lines += ["", "## Skipped images", ""]
        lines += [f"- `{s.path}`: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def write_report(
    report: RetrievalReport,
    out_dir: Path,
    *,
    gallery: bool = True,
    gallery_k: int = 1,
    gallery_limit: int = 50,
) -> ReportFiles:
    """Write results.json, results.csv, results.md and (by default) gallery.html."""
    from ._gallery import gallery_html

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = ReportFiles(
            out_dir / "results.json",
            out_dir / "results.csv",
            out_dir / "results.md",
            out_dir / "gallery.html" if gallery else None,
        )
        data = report.to_dict()
        data["gallery"] = {"miss_k": gallery_k, "limit_per_direction": gallery_limit}
        paths.json.write_text(json.dumps(data, indent=2, default=str) + "\n", "utf-8")
        paths.csv.write_text(results_csv(report), "utf-8")
        paths.markdown.write_text(results_markdown(report), "utf-8")
        if paths.gallery is not None:
            html = gallery_html(report, miss_k=gallery_k, limit=gallery_limit)
            paths.gallery.write_text(html, "utf-8")
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot write the report: {exc.strerror or exc}") from exc
    return paths
