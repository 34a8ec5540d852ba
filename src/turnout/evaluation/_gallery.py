"""gallery.html: the queries whose gold item missed the top k, self-contained, thumbnails inlined.

For each encoder and direction: the query, the top results with scores, and the gold
item with its rank (1-based, as people count). A breakdown of recall by caption type
sits above. When there are more misses than `limit`, a seeded sample is shown.
"""

from __future__ import annotations

import base64
import html
import io
import random
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from turnout.retrieval import UnreadableImageError, decode_rgb, top_k_rows

from ._captions import caption_type
from ._report import pct, summary_line
from ._results import ARROWS, EncoderResult, RetrievalReport

_THUMB = 160
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:17px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px}
td.n{text-align:right}.miss{border:1px solid #ddd;border-radius:6px;padding:8px;margin:10px 0}
.row{display:flex;gap:8px;flex-wrap:wrap;align-items:flex-start}
.cell{width:170px;font-size:12px}.cell img{max-width:160px;max-height:160px;display:block}
.gold{outline:3px solid #2a7;outline-offset:1px}.query{font-weight:600}
.tag{display:inline-block;background:#eef;border-radius:4px;padding:0 4px;margin-right:4px}
ol{margin:4px 0}li.gold{outline:none;color:#175;font-weight:600}.muted{color:#777}
"""


class _Thumbs:
    """Data-URI thumbnails, each image decoded once however often it appears."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self._made: dict[int, str] = {}

    def __call__(self, index: int) -> str:
        if index not in self._made:
            try:
                image = decode_rgb(self.paths[index])
            except UnreadableImageError:
                self._made[index] = ""
                return ""
            image.thumbnail((_THUMB, _THUMB))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
            self._made[index] = f"data:image/jpeg;base64,{encoded}"
        return self._made[index]


def _img(src: str, alt: str, gold: bool = False) -> str:
    cls = ' class="gold"' if gold else ""
    if not src:
        return '<div class="muted">(image unreadable)</div>'
    return f'<img src="{src}" alt="{html.escape(alt)}"{cls}>'


def _sample(indices: NDArray[np.int64], limit: int, seed: int) -> list[int]:
    chosen = [int(i) for i in indices]
    if len(chosen) > limit:
        chosen = sorted(random.Random(seed).sample(chosen, limit))
    return chosen


def _breakdown(result: EncoderResult, ks: tuple[int, ...]) -> str:
    head = "".join(f"<th>R@{k}</th>" for k in ks)
    rows = []
    for g in result.by_caption_type:
        cells = "".join(f'<td class="n">{pct(g.recall[k])}</td>' for k in ks)
        rows.append(
            f"<tr><td>{ARROWS[g.direction]}</td><td>{html.escape(g.group)}</td>"
            f'<td class="n">{g.n:,}</td>{cells}</tr>'
        )
    return (
        f"<table><tr><th>direction</th><th>caption group</th><th>n</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
        + '<p class="muted">T-&gt;I: caption queries of the group. I-&gt;T: captions of the group, '
        "a hit when the caption ranks in the top k for its own image.</p>"
    )


def _t2i(
    report: RetrievalReport,
    result: EncoderResult,
    thumbs: Callable[[int], str],
    miss_k: int,
    limit: int,
    top: int,
) -> str:
    ranks = result.t2i_ranks
    missed = np.flatnonzero(ranks >= miss_k)
    shown = _sample(missed, limit, seed=1)
    parts = [
        f"<h3>T-&gt;I: {len(missed):,} of {len(ranks):,} captions missed the top {miss_k}"
        f"{f', {len(shown)} shown' if len(shown) < len(missed) else ''}</h3>"
    ]
    if shown:
        queries = result.text_vectors[shown]
        top_idx, top_scores = top_k_rows(queries @ result.image_vectors.T, top)
    for row, c in enumerate(shown):
        gold = int(report.caption_image[c])
        gold_score = float(result.text_vectors[c] @ result.image_vectors[gold])
        tags = "".join(
            f'<span class="tag">{html.escape(t)}</span>'
            for t in caption_type(report.captions[c]).groups
        )
        cells = "".join(
            f'<div class="cell">{_img(thumbs(int(i)), report.item_ids[int(i)], int(i) == gold)}'
            f"#{r + 1} · {s:.3f}</div>"
            for r, (i, s) in enumerate(zip(top_idx[row], top_scores[row], strict=True))
        )
        parts.append(
            f'<div class="miss"><div class="query">“{html.escape(report.captions[c])}”</div>{tags}'
            f'<div class="row">{cells}<div class="cell"><b>gold</b>'
            f"{_img(thumbs(gold), report.item_ids[gold], True)}"
            f"rank {int(ranks[c]) + 1} · {gold_score:.3f}<br>{html.escape(report.item_ids[gold])}"
            "</div></div></div>"
        )
    return "".join(parts)


def _i2t(
    report: RetrievalReport,
    result: EncoderResult,
    thumbs: Callable[[int], str],
    miss_k: int,
    limit: int,
    top: int,
) -> str:
    ranks = result.i2t_ranks
    missed = np.flatnonzero(ranks >= miss_k)
    shown = _sample(missed, limit, seed=2)
    parts = [
        f"<h3>I-&gt;T: {len(missed):,} of {len(ranks):,} images missed the top {miss_k}"
        f"{f', {len(shown)} shown' if len(shown) < len(missed) else ''}</h3>"
    ]
    if shown:
        queries = result.image_vectors[shown]
        top_idx, top_scores = top_k_rows(queries @ result.text_vectors.T, top)
    for row, i in enumerate(shown):
        golds = np.flatnonzero(report.caption_image == i)
        listed = "".join(
            f"<li{' class=gold' if report.caption_image[c] == i else ''}>{s:.3f} · "
            f"{html.escape(report.captions[int(c)])}</li>"
            for c, s in zip(top_idx[row], top_scores[row], strict=True)
        )
        gold_items = "".join(
            f"<li>rank {int(result.i2t_caption_ranks[c]) + 1} · "
            f"{float(result.image_vectors[i] @ result.text_vectors[c]):.3f} · "
            f"{html.escape(report.captions[int(c)])}</li>"
            for c in golds
        )
        parts.append(
            f'<div class="miss"><div class="row"><div class="cell">'
            f"{_img(thumbs(i), report.item_ids[i])}{html.escape(report.item_ids[i])}</div>"
            f"<div><b>top {top}</b><ol>{listed}</ol><b>its captions</b> (best rank "
            f"{int(ranks[i]) + 1})<ul>{gold_items}</ul></div></div></div>"
        )
    return "".join(parts)


def gallery_html(report: RetrievalReport, *, miss_k: int = 1, limit: int = 50, top: int = 5) -> str:
    """The whole gallery page as one string."""
    thumbs = _Thumbs(report.item_paths)
    top = max(top, miss_k)
    body = [
        f"<h1>Retrieval failures: {html.escape(summary_line(report))}</h1>",
        f"<p>Queries whose gold item is not in the top {miss_k}. Scores are cosine "
        "similarities; ranks count from 1; a green outline marks the gold item.</p>",
    ]
    for result in report.encoders:
        body.append(f"<h2>{html.escape(result.name)}</h2>")
        body.append("<h3>Recall by caption type</h3>" + _breakdown(result, report.ks))
        body.append(_t2i(report, result, thumbs, miss_k, limit, top))
        body.append(_i2t(report, result, thumbs, miss_k, limit, top))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>turnout retrieval gallery</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
