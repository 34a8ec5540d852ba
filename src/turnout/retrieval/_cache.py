"""An embedding cache on disk: one SQLite file, vectors keyed by encoder and content.

The key is the encoder's fingerprint (model id, revision, preprocessing, dtype) plus the
SHA-256 of the image bytes or the caption text, so a rerun re-encodes nothing and a
changed image, a new revision or new preprocessing is encoded afresh.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from turnout.core import ConfigError

Kind = Literal["image", "text"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS encoders (
    fingerprint TEXT PRIMARY KEY,
    identity TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, kind, content)
) WITHOUT ROWID;
"""
# SQLite's default limit on bound parameters per statement is far above this.
_CHUNK = 500


class EmbeddingCache:
    """Vectors by (encoder fingerprint, kind, content hash); safe to share between runs."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{self.path}: cannot open the embedding cache: {exc}") from exc

    def remember_encoder(self, fingerprint: str, identity: Mapping[str, Any]) -> None:
        """Record what a fingerprint stands for, for people reading the cache."""
        text = json.dumps(identity, sort_keys=True, default=str)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO encoders (fingerprint, identity) VALUES (?, ?)",
                (fingerprint, text),
            )

    def get_many(
        self, fingerprint: str, kind: Kind, contents: Iterable[str]
    ) -> dict[str, NDArray[np.float32]]:
        """The cached vectors among `contents`; missing ones are simply absent."""
        wanted = list(dict.fromkeys(contents))
        found: dict[str, NDArray[np.float32]] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT content, vector FROM vectors WHERE fingerprint = ? AND kind = ? "
                f"AND content IN ({marks})",
                (fingerprint, kind, *chunk),
            )
            for content, blob in rows:
                found[content] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(
        self, fingerprint: str, kind: Kind, items: Iterable[tuple[str, NDArray[np.float32]]]
    ) -> None:
        rows = [
            (fingerprint, kind, content, np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for content, v in items
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (fingerprint, kind, content, vector) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def count(self, fingerprint: str | None = None) -> int:
        if fingerprint is None:
            row = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM vectors WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
