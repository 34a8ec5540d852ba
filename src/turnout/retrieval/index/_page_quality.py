"""Page text quality as a metric: OCR pages below the confidence floor, per collection and tenant.

`page_quality(settings)` reads every collection's manifest (no backend is opened) and is
the hook a metrics endpoint calls at scrape time; `PageQualityCollector` wraps it for a
Prometheus registry as `turnout_index_low_confidence_pages` and
`turnout_index_pages_without_text` (labels: collection, tenant).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._catalog import collections_root, list_collections
from ._manifest import Manifest

if TYPE_CHECKING:
    from turnout.core import Settings


@dataclass(frozen=True)
class PageQuality:
    collection: str
    tenant: str
    pages: int
    ocr_pages: int
    low_confidence_pages: int
    pages_without_text: int


def page_quality(settings: Settings) -> list[PageQuality]:
    """Pages by where their text came from, per collection and tenant (document collections)."""
    out: list[PageQuality] = []
    for name in list_collections(settings):
        path = collections_root(settings) / name / "manifest.sqlite"
        if not path.is_file():
            continue
        manifest = Manifest(path)
        try:
            for tenant in manifest.tenants():
                counts = manifest.page_counts(tenant)
                if counts.pages:
                    out.append(
                        PageQuality(
                            name,
                            tenant,
                            counts.pages,
                            counts.ocr,
                            counts.low_confidence,
                            counts.without_text,
                        )
                    )
        finally:
            manifest.close()
    return out


class PageQualityCollector:
    """A Prometheus collector (`registry.register(PageQualityCollector(settings))`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        low = GaugeMetricFamily(
            "turnout_index_low_confidence_pages",
            "Pages read by OCR below the collection's confidence floor.",
            labels=["collection", "tenant"],
        )
        empty = GaugeMetricFamily(
            "turnout_index_pages_without_text",
            "Pages that gave no text (no text layer, and OCR off, missing or empty).",
            labels=["collection", "tenant"],
        )
        for q in page_quality(self.settings):
            low.add_metric([q.collection, q.tenant], q.low_confidence_pages)
            empty.add_metric([q.collection, q.tenant], q.pages_without_text)
        yield low
        yield empty
