"""The one interface every vector backend implements, at the level of points.

A backend stores points (an id, a vector, an optional multivector, a payload) and answers
searches restricted by `must`: equality (or any-of, for a list) on payload keys. The
`Collection` above it turns items into points and always puts the tenant into `must`, so
no backend is asked a question that is not scoped to one tenant.

Scores are "higher is closer" on every backend: cosine similarity, dot product, or the
negated Euclidean distance; for late interaction, the sum of MaxSim over query vectors;
for BM25, the BM25 score.

A document collection's passages also carry a `text` vector (searched with
`using="text"`) and a text for BM25 (`search_lexical`); see `_lexical.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ._types import Point

Scalar = str | int | float | bool
Must = dict[str, Scalar | list[Scalar]]
Found = tuple[str, float, dict[str, Any]]


class Backend(Protocol):
    """A store of points for one collection."""

    kind: str

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(
        self,
        vector: NDArray[np.float32],
        must: Must,
        k: int,
        *,
        multivector: NDArray[np.float32] | None = None,
        candidates: int = 100,
        using: str = "dense",
    ) -> list[Found]: ...

    def search_lexical(self, query: str, must: Must, k: int) -> list[Found]: ...

    def retrieve(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def count(self, must: Must) -> int: ...

    def ids(self, must: Must) -> list[str]: ...

    def size_bytes(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def directory_bytes(path: Any) -> int:
    """Bytes allocated on disk to every file under a folder.

    Allocated, not apparent, size: Qdrant preallocates sparse 32 MiB pages and WAL files.
    """
    from pathlib import Path

    root = Path(path)
    if not root.exists():
        return 0
    total = 0
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            total += min(st.st_size, st.st_blocks * 512)
    return total
