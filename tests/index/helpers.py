"""Settings per backend and synthetic items for index tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from turnout.core import Settings, load_settings
from turnout.retrieval.index import Item, Provenance

BACKENDS = ("edge", "server", "faiss")


def settings_for(tmp: Path, backend: str, **index: Any) -> Settings:
    """Settings whose collections live under `tmp`; the server backend uses local mode there."""
    options: dict[str, Any] = {"backend": backend, "path": tmp / "indexes", **index}
    if backend == "server":
        options["url"] = str(tmp / "qdrant-local")
    return load_settings(home=tmp / "home", index=options)


def items(n: int, tenant: str, prefix: str = "item") -> list[Item]:
    return [
        Item(
            id=f"{prefix}{i}",
            tenant=tenant,
            source=Provenance(f"/corpus/{prefix}{i}.png", f"hash{i}", page=i % 3 or None),
            modality="image" if i % 2 else "page",
            text=f"text {i}",
            metadata={"group": i % 3, "kind": "even" if i % 2 == 0 else "odd"},
        )
        for i in range(n)
    ]


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def clustered_multivectors(
    n: int, dim: int, seed: int = 0, tokens: tuple[int, int] = (8, 40)
) -> list[np.ndarray]:  # type: ignore[type-arg]
    """Items whose token vectors cluster around a few topics each, as real token embeddings do."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        topics = rng.normal(size=(rng.integers(2, 5), dim))
        count = int(rng.integers(*tokens))
        picks = topics[rng.integers(0, len(topics), size=count)]
        out.append((picks + 0.3 * rng.normal(size=(count, dim))).astype(np.float32))
    return out
