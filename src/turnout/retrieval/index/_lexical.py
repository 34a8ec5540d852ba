"""BM25 over passages: Qdrant's sparse vectors on Qdrant backends, `bm25s` beside FAISS.

On Qdrant Edge and a Qdrant server each passage stores the sparse vector of Qdrant's own
BM25 model (`qdrant_edge.Bm25`: term frequencies saturated by k and b, English stemming
and stop words) in a sparse vector with the IDF modifier; a query's sparse vector is
scored against it with IDF computed over the querying tenant's points only, so one
tenant's documents never move another's scores. Beside FAISS, `bm25s` (with PyStemmer's
English stemmer) indexes the same passages per tenant, built from the store on first use
after each write.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ._errors import IndexBackendError

SPARSE = "bm25"


@functools.cache
def qdrant_bm25() -> Any:
    """Qdrant's BM25 model (one per process; it holds only its configuration)."""
    try:
        import qdrant_edge
    except ImportError as exc:  # pragma: no cover - the retrieval extra installs it
        raise IndexBackendError(
            "BM25 on Qdrant backends needs qdrant-edge-py: pip install 'turnout[retrieval]'"
        ) from exc
    return qdrant_edge.Bm25()


def document_terms(text: str) -> tuple[list[int], list[float]]:
    """The sparse BM25 document vector of a passage (empty when it has no indexable word)."""
    vector = qdrant_bm25().embed_document(text)
    return list(vector.indices), list(vector.values)


def query_terms(text: str) -> tuple[list[int], list[float]]:
    vector = qdrant_bm25().embed_query(text)
    return list(vector.indices), list(vector.values)


def _stemmer() -> Any:
    try:
        import Stemmer
    except ImportError as exc:  # pragma: no cover - the retrieval extra installs it
        raise IndexBackendError(
            "BM25 beside FAISS needs PyStemmer: pip install 'turnout[retrieval]'"
        ) from exc
    return Stemmer.Stemmer("english")


class Bm25Index:
    """`bm25s` over one tenant's passages: ids in, (id, score) out, best first."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        try:
            import bm25s
        except ImportError as exc:  # pragma: no cover - the retrieval extra installs it
            raise IndexBackendError(
                "BM25 beside FAISS needs bm25s: pip install 'turnout[retrieval]'"
            ) from exc
        self._bm25s = bm25s
        self._stem = _stemmer()
        self.ids = list(ids)
        self.retriever = bm25s.BM25()
        if self.ids:
            tokens = bm25s.tokenize(
                list(texts), stopwords="en", stemmer=self._stem, show_progress=False
            )
            self.retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        tokens = self._bm25s.tokenize(
            [query], stopwords="en", stemmer=self._stem, show_progress=False, return_ids=False
        )
        if not tokens or not tokens[0]:
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(k, len(self.ids)), show_progress=False)
        return [
            (self.ids[int(d)], float(s))
            for d, s in zip(docs[0], scores[0], strict=True)
            if float(s) > 0
        ]
