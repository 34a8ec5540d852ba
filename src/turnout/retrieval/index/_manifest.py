"""The manifest: what was indexed from which source, with which content hash, and the journal.

One SQLite file per collection. `items` maps each (tenant, item id) to the backend point
holding its current version; `sources` records each file's hash, size, mtime and outcome;
`roots` the folders and files `turnout index add` was given, which `refresh` and `status`
rescan; `pages` where each page's text came from (text layer, OCR, none) and how far OCR
can be trusted; `journal` the batch in flight (see `Collection.write_batch`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import IndexStorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    tenant TEXT NOT NULL, item_id TEXT NOT NULL, pid TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (tenant, item_id)
);
CREATE INDEX IF NOT EXISTS items_source ON items (tenant, source);
CREATE TABLE IF NOT EXISTS sources (
    tenant TEXT NOT NULL, path TEXT NOT NULL, root TEXT NOT NULL, content_hash TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, extra TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, indexed_at REAL NOT NULL,
    PRIMARY KEY (tenant, path)
);
CREATE TABLE IF NOT EXISTS roots (
    tenant TEXT NOT NULL, root TEXT NOT NULL, added_at REAL NOT NULL, PRIMARY KEY (tenant, root)
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, added TEXT NOT NULL,
    removed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    tenant TEXT NOT NULL, source TEXT NOT NULL, page INTEGER NOT NULL, text_source TEXT NOT NULL,
    confidence REAL, rotation INTEGER, low_confidence INTEGER NOT NULL, note TEXT,
    PRIMARY KEY (tenant, source, page)
);
"""


@dataclass(frozen=True)
class SourceRecord:
    tenant: str
    path: str
    root: str
    content_hash: str
    size: int
    mtime_ns: int
    extra: str
    status: str  # "indexed" or "failed"
    reason: str | None
    indexed_at: float


@dataclass(frozen=True)
class PageRecord:
    """Where one page's text came from; `page` 0 stands for an image read by OCR."""

    tenant: str
    source: str
    page: int
    text_source: str  # "text-layer", "ocr" or "none"
    confidence: float | None
    rotation: int | None
    low_confidence: bool
    note: str | None


@dataclass(frozen=True)
class PageCounts:
    """A tenant's (or every tenant's) pages by where their text came from."""

    pages: int = 0
    text_layer: int = 0
    ocr: int = 0
    low_confidence: int = 0
    without_text: int = 0


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.executescript(_SCHEMA)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise IndexStorageError(f"{path}: not a readable manifest ({exc})") from exc

    def close(self) -> None:
        self.db.close()

    # -- items ---------------------------------------------------------------------------

    def pids(self, tenant: str, item_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(item_ids), 500):
            chunk = list(item_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for item_id, pid in self.db.execute(
                f"SELECT item_id, pid FROM items WHERE tenant=? AND item_id IN ({marks})",
                [tenant, *chunk],
            ):
                out[item_id] = pid
        return out

    def items_of(self, tenant: str, source: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT item_id, pid FROM items WHERE tenant=? AND source=?", (tenant, source)
        )
        return dict(rows.fetchall())

    def known_pids(self, pids: Iterable[str]) -> set[str]:
        wanted = list(pids)
        out: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out |= {
                r[0]
                for r in self.db.execute(f"SELECT pid FROM items WHERE pid IN ({marks})", chunk)
            }
        return out

    def item_count(self, tenant: str | None = None) -> int:
        if tenant is None:
            return int(self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        row = self.db.execute("SELECT COUNT(*) FROM items WHERE tenant=?", (tenant,)).fetchone()
        return int(row[0])

    def tenants(self) -> list[str]:
        rows = self.db.execute(
            "SELECT tenant FROM items UNION SELECT tenant FROM roots ORDER BY tenant"
        )
        return [r[0] for r in rows]

    # -- the journal ---------------------------------------------------------------------

    def begin(self, added: Sequence[str], removed: Sequence[str]) -> int:
        cur = self.db.execute(
            "INSERT INTO journal (state, added, removed) VALUES ('prepared', ?, ?)",
            (json.dumps(list(added)), json.dumps(list(removed))),
        )
        return int(cur.lastrowid or 0)

    def commit(
        self,
        batch: int,
        tenant: str,
        put: Sequence[tuple[str, str, str]],
        drop: Sequence[str],
        sources: Sequence[SourceRecord] = (),
        forget_sources: Sequence[str] = (),
        pages: Sequence[PageRecord] = (),
    ) -> None:
        """One transaction: the items now point at the new points, and the batch is committed.

        A source written or forgotten here loses its old page records; `pages` are the new.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(drop), 500):
                chunk = list(drop[start : start + 500])
                marks = ",".join("?" * len(chunk))
                self.db.execute(
                    f"DELETE FROM items WHERE tenant=? AND item_id IN ({marks})", [tenant, *chunk]
                )
            self.db.executemany(
                "INSERT OR REPLACE INTO items (tenant, item_id, pid, source) VALUES (?, ?, ?, ?)",
                [(tenant, item_id, pid, source) for item_id, pid, source in put],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.tenant,
                        s.path,
                        s.root,
                        s.content_hash,
                        s.size,
                        s.mtime_ns,
                        s.extra,
                        s.status,
                        s.reason,
                        s.indexed_at,
                    )
                    for s in sources
                ],
            )
            self.db.executemany(
                "DELETE FROM sources WHERE tenant=? AND path=?",
                [(tenant, path) for path in forget_sources],
            )
            self.db.executemany(
                "DELETE FROM pages WHERE tenant=? AND source=?",
                [(tenant, s.path) for s in sources] + [(tenant, p) for p in forget_sources],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        p.tenant,
                        p.source,
                        p.page,
                        p.text_source,
                        p.confidence,
                        p.rotation,
                        int(p.low_confidence),
                        p.note,
                    )
                    for p in pages
                ],
            )
            self.db.execute("UPDATE journal SET state='committed' WHERE id=?", (batch,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def finish(self, batch: int) -> None:
        self.db.execute("DELETE FROM journal WHERE id=?", (batch,))

    def open_batches(self) -> list[tuple[int, str, list[str], list[str]]]:
        rows = self.db.execute("SELECT id, state, added, removed FROM journal ORDER BY id")
        return [(r[0], r[1], json.loads(r[2]), json.loads(r[3])) for r in rows]

    # -- sources and roots -----------------------------------------------------------------

    def add_root(self, tenant: str, root: str, now: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO roots (tenant, root, added_at) VALUES (?, ?, ?)",
            (tenant, root, now),
        )

    def roots(self, tenant: str | None = None) -> list[tuple[str, str]]:
        if tenant is None:
            return self.db.execute(
                "SELECT tenant, root FROM roots ORDER BY tenant, root"
            ).fetchall()
        rows = self.db.execute(
            "SELECT tenant, root FROM roots WHERE tenant=? ORDER BY root", (tenant,)
        )
        return rows.fetchall()

    def sources(self, tenant: str, root: str) -> dict[str, SourceRecord]:
        rows = self.db.execute("SELECT * FROM sources WHERE tenant=? AND root=?", (tenant, root))
        return {r[1]: SourceRecord(*r) for r in rows}

    def failed(self, tenant: str | None = None) -> list[SourceRecord]:
        query = "SELECT * FROM sources WHERE status='failed'"
        rows = (
            self.db.execute(query + " AND tenant=?", (tenant,))
            if tenant
            else self.db.execute(query)
        )
        return [SourceRecord(*r) for r in rows]

    def page_counts(self, tenant: str | None = None) -> PageCounts:
        where, args = ("WHERE tenant=?", (tenant,)) if tenant else ("", ())
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(text_source='text-layer'), 0), "
            "COALESCE(SUM(text_source='ocr'), 0), COALESCE(SUM(low_confidence), 0), "
            f"COALESCE(SUM(text_source='none'), 0) FROM pages {where}",
            args,
        ).fetchone()
        return PageCounts(*(int(v) for v in row))

    def page_records(self, tenant: str, source: str | None = None) -> list[PageRecord]:
        query = "SELECT * FROM pages WHERE tenant=?"
        args: tuple[str, ...] = (tenant,)
        if source is not None:
            query, args = query + " AND source=?", (tenant, source)
        rows = self.db.execute(query + " ORDER BY source, page", args)
        return [PageRecord(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]

    def indexed_sources(self, tenant: str) -> list[str]:
        rows = self.db.execute(
            "SELECT path FROM sources WHERE tenant=? AND status='indexed' ORDER BY path",
            (tenant,),
        )
        return [r[0] for r in rows]

    def touch(self, records: Sequence[SourceRecord]) -> None:
        """Same content, new mtime: remember the stat so the next scan needs no hashing."""
        self.db.executemany(
            "UPDATE sources SET size=?, mtime_ns=? WHERE tenant=? AND path=?",
            [(r.size, r.mtime_ns, r.tenant, r.path) for r in records],
        )

    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )
