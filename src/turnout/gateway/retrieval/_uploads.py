"""Uploads: a tenant's images and PDFs, kept under the gateway's home and indexed with the
index's own ingestion, so the manifest, refresh and the freshness SLO cover them too.

Each tenant's uploads to a collection live in one folder (`uploads/<collection>/<tenant>`),
registered as an indexed root: `turnout index refresh` and `status` see uploads like any
other source. Re-uploading a file of the same name replaces it (its items are re-indexed
with the same ids); deleting an uploaded item deletes its file and every item made from it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnout.core import PayloadTooLargeError, Settings, UnsupportedMediaError

from ._collections import ItemNotFoundError, public_id
from ._media import PDFIUM
from ._retrieval import Models, Retrieval, uploads_dir

_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".pdf")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class UploadReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(len(f["items"]) for f in self.files)


def safe_name(filename: str) -> str:
    """A file name that stays inside the tenant's folder and keeps its extension."""
    name = _UNSAFE.sub("_", Path(filename or "").name).strip("._")[:120]
    suffix = Path(name).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UnsupportedMediaError(
            f"{filename!r}: uploads take images ({', '.join(_SUFFIXES[:-1])}) and PDFs "
            "(.pdf); name the file with its extension"
        )
    return name


class Uploads:
    def __init__(self, settings: Settings, retrieval: Retrieval) -> None:
        self.settings = settings
        self.retrieval = retrieval

    async def add(
        self, tenant: str, collection: str, files: list[tuple[str, bytes]]
    ) -> UploadReport:
        """Store and index the files; files that cannot be indexed are reported, not kept."""
        # Tenant ids are checked by governance (lower-case letters, digits, '_' and '-'):
        # safe as a folder name.
        limit = self.settings.search.max_upload_bytes
        total = sum(len(data) for _, data in files)
        if total > limit:
            raise PayloadTooLargeError(
                f"upload of {total:,} bytes; at most {limit:,} per request "
                "(search.max_upload_bytes)"
            )
        names = [safe_name(filename) for filename, _ in files]
        thread = self.retrieval.collections.get(collection, create=True)
        if await thread.spec() is None:
            encoder, text_encoder, documents = await self._new_collection(collection)
        else:
            models = await self.retrieval.models(thread)
            encoder, text_encoder, documents = _indexing_encoders(models), None, None
            if models.dual is not None and models.text is not None:
                text_encoder = models.text.encoder
        folder = uploads_dir(self.settings, collection, tenant)

        def store_and_index(c: Any) -> UploadReport:
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for name, (_, data) in zip(names, files, strict=True):
                path = folder / name
                tmp = path.with_name(f".{name}.part")
                tmp.write_bytes(data)
                os.replace(tmp, path)
                paths.append(path)
            result = self._index_folder(c, tenant, folder, encoder, text_encoder)
            report = UploadReport()
            refused = {Path(path).name: reason for path, reason in result.skipped}
            for original, path in zip(files, paths, strict=True):
                if path.name in refused:
                    report.skipped.append({"file": original[0], "reason": refused[path.name]})
                    path.unlink(missing_ok=True)  # nothing half-kept: it is not indexed
                    continue
                ids = sorted(c.manifest.items_of(tenant, str(path)))
                report.files.append(
                    {
                        "file": path.name,
                        "bytes": path.stat().st_size,
                        "items": [public_id(collection, i) for i in ids],
                    }
                )
            return report

        report = await thread.run_creating(encoder, store_and_index, documents)
        thread.forget_presence(tenant)
        return report

    async def delete(self, tenant: str, collection: str, public: str) -> int:
        """Delete an item: an uploaded file's items all go with its file; an item indexed
        from elsewhere goes alone. Returns how many items were removed."""
        owner, item = await self.retrieval.item(tenant, public)
        if owner != collection:
            raise ItemNotFoundError(public)
        folder = uploads_dir(self.settings, collection, tenant)
        source = Path(item.source.source)
        thread = self.retrieval.collections.get(collection)
        models = await self.retrieval.models(thread)
        encoder = _indexing_encoders(models)
        text_encoder = models.text.encoder if models.dual and models.text else None

        def remove(c: Any) -> int:
            if source.parent != folder:
                return int(c.delete(tenant, [item.id]))
            before = len(c.manifest.items_of(tenant, str(source)))
            source.unlink(missing_ok=True)
            # Indexing the folder again removes what was deleted at the source (and
            # picks up anything else pending there).
            self._index_folder(c, tenant, folder, encoder, text_encoder)
            return before

        removed = await thread.run(remove)
        thread.forget_presence(tenant)
        return removed

    def _index_folder(
        self, c: Any, tenant: str, folder: Path, encoder: Any, text_encoder: Any
    ) -> Any:
        """Index the tenant's upload folder: what is new or changed, and what was deleted."""
        from turnout.retrieval.index import index_sources

        index = self.settings.index
        with PDFIUM:
            return index_sources(
                c,
                encoder,
                [folder],
                tenant=tenant,
                batch_size=index.batch_size,
                max_pixels=index.max_image_pixels,
                pdf_scale=index.pdf_scale,
                text_encoder=text_encoder,
            )

    async def _new_collection(self, collection: str) -> tuple[Any, Any, Any]:
        """(encoder, text encoder, document options) to create a collection with, from
        `search.encoder` and `search.text_encoder`."""
        from turnout.core import ConfigError
        from turnout.retrieval.index import DocumentOptions

        search = self.settings.search
        spec = search.encoders.get(collection) or search.encoder
        if not spec and not search.text_encoder:
            raise ConfigError(
                f"collection {collection!r} does not exist and the gateway has no encoder to "
                "create it with: set search.encoder (TURNOUT_SEARCH__ENCODER) for images and "
                "pages, and/or search.text_encoder (e.g. minilm) for page text"
            )
        dual = await self.retrieval.encoders.get(spec, "dual") if spec else None
        if not search.text_encoder:
            assert dual is not None
            return dual.encoder, None, None
        text = await self.retrieval.encoders.get(search.text_encoder, "text")
        documents = DocumentOptions(
            text_encoder=search.text_encoder,
            text_fingerprint=text.fingerprint,
            text_dim=text.encoder.dim if dual is not None else None,
            images=dual is not None,
        )
        if dual is None:  # page text only: the text encoder is the collection's own
            return text.encoder, None, documents
        return dual.encoder, text.encoder, documents


def _indexing_encoders(models: Models) -> Any:
    """The encoder `index_sources` takes first: the collection's own."""
    own = models.dual if models.dual is not None else models.text
    assert own is not None
    return own.encoder
