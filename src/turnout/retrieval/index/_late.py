"""Late interaction: token pooling, multivector codes (int8, binary) and MaxSim.

MaxSim(q, d) = sum over query vectors of the best dot product with any document vector.
Vectors are L2-normalised first, so it is a sum of cosines.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._types import Quantization

F32 = NDArray[np.float32]


def normalise(vectors: NDArray[np.floating]) -> F32:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    out: F32 = (v / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def pool_tokens(vectors: F32, factor: int, *, iterations: int = 4) -> F32:
    """Cluster an item's token vectors into ceil(n / factor) centroids (spherical k-means).

    Token pooling in the manner of Clavié et al. (2024): neighbouring tokens of one page
    are near-duplicates, so their centroids keep most of what MaxSim sees. Deterministic:
    the first centroids are evenly spaced tokens.
    """
    v = normalise(vectors)
    n = len(v)
    k = max(1, -(-n // factor))
    if factor <= 1 or k >= n:
        return v
    centroids = v[np.linspace(0, n - 1, k).round().astype(int)]
    for _ in range(iterations):
        assign = np.argmax(v @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, v)
        counts = np.bincount(assign, minlength=k)
        empty = counts == 0
        sums[empty] = centroids[empty]
        centroids = normalise(sums)
    result: F32 = centroids
    return result


def encode_multivector(vectors: F32, quantization: Quantization) -> bytes:
    """Store an item's (already normalised) vectors: float32, int8 with a scale, or bits."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if quantization == "none":
        return v.tobytes()
    if quantization == "scalar":
        scale = float(np.abs(v).max()) or 1.0
        codes = np.clip(np.round(v / scale * 127), -127, 127).astype(np.int8)
        return np.float32(scale).tobytes() + codes.tobytes()
    return np.packbits(v > 0, axis=1).tobytes()


def decode_multivector(data: bytes, dim: int, quantization: Quantization) -> F32:
    """The vectors `encode_multivector` stored, as float32 (binary: +-1/sqrt(dim))."""
    out: F32
    if quantization == "none":
        out = np.frombuffer(data, dtype=np.float32).reshape(-1, dim)
        return out
    if quantization == "scalar":
        scale = np.frombuffer(data[:4], dtype=np.float32)[0]
        codes = np.frombuffer(data[4:], dtype=np.int8).reshape(-1, dim)
        out = codes.astype(np.float32) * (scale / 127)
        return out
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(-1, (dim + 7) // 8), axis=1)
    signs = bits[:, :dim].astype(np.float32) * 2 - 1
    out = (signs / np.sqrt(dim)).astype(np.float32)
    return out


def maxsim(query: F32, document: F32) -> float:
    """Sum over query vectors of the best similarity with any document vector."""
    return float((query @ document.T).max(axis=1).sum())


def pooled_vector(vectors: F32) -> F32:
    """The one vector a first-stage search uses when an item gives none: the normalised mean."""
    return normalise(normalise(vectors).mean(axis=0))


def sketch_vectors(vectors: F32, size: int) -> F32:
    """At most `size` centroids of an item's vectors: what the first stage ranks by MaxSim."""
    n = len(vectors)
    return pool_tokens(vectors, max(1, -(-n // max(1, size))))


def maxsim_rows(query: F32, rows: F32, starts: NDArray[np.int64]) -> F32:
    """MaxSim of `query` with many items at once: item j's vectors are
    rows[starts[j]:starts[j + 1]] (the last runs to the end); `starts` is increasing."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.float32)
    sims = query @ rows.T  # (query vectors, all rows)
    best = np.maximum.reduceat(sims, starts, axis=1)  # (query vectors, items)
    out: F32 = best.sum(axis=0).astype(np.float32, copy=False)
    return out
