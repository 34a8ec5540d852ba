"""Corpora: folders of images (with optional captions files) and PDFs, read defensively.

Every file that cannot be indexed gets an `UnusableSourceError` naming it and saying why:
an empty file, an unsupported format, a symlink leading out of the folder, an image or page
claiming more pixels than `index.max_image_pixels` (a decompression bomb), a corrupt or
truncated image, a PDF that is broken, encrypted or has no pages.

A document collection reads files through `_documents.py` instead: page text, OCR and
passages beside the page images.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._errors import DatasetError
from ._errors import UnreadableDocumentError, UnusableSourceError
from ._types import DocumentOptions, Item, Modality, Provenance

if TYPE_CHECKING:
    from PIL.Image import Image

    from ._manifest import PageRecord

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
PDF_SUFFIXES = (".pdf",)
CAPTION_FILES = ("captions.csv", "captions.jsonl")
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "MPO")
SUPPORTED = "jpg, png, webp, gif (first frame) and pdf"


@dataclass(frozen=True)
class SourceFile:
    """One file to index, the root it was found under, and any captions for it."""

    path: Path
    root: str
    kind: Literal["image", "pdf"]
    captions: tuple[str, ...] = ()

    @property
    def extra(self) -> str:
        """What besides the bytes decides the items: the captions."""
        return hashlib.sha256(json.dumps(self.captions).encode()).hexdigest()[:16]


@dataclass
class Scan:
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing_root: bool = False


@dataclass(frozen=True)
class Unit:
    """One item and what to embed for it: an image or a text."""

    item: Item
    image: Image | None = None
    text: str | None = None


def scan_root(root: Path) -> Scan:
    """The files under a root (a folder or a single file), and those skipped with reasons."""
    scan = Scan()
    if not root.exists():
        scan.missing_root = True
        return scan
    base = root.resolve()
    if base.is_file():
        kind = _kind(base)
        if kind is None:
            scan.skipped.append((str(root), f"unsupported format; index takes {SUPPORTED}"))
        else:
            scan.files.append(SourceFile(base, str(base), kind))
        return scan
    captions = _captions(base)
    for folder, dirs, names in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or (Path(folder) == base and name in CAPTION_FILES):
                continue
            path = Path(folder) / name
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(base):
                    scan.skipped.append(
                        (str(path), f"symlink points outside {base} (to {target}); refused")
                    )
                    continue
                path = target
            kind = _kind(path)
            if kind is None:
                scan.skipped.append(
                    (
                        str(path),
                        f"unsupported format {path.suffix or '(none)'!r}; index takes {SUPPORTED}",
                    )
                )
                continue
            resolved = path.resolve()
            scan.files.append(SourceFile(resolved, str(base), kind, captions.get(resolved, ())))
    return scan


def _kind(path: Path) -> Literal["image", "pdf"] | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    return None


def _captions(folder: Path) -> dict[Path, tuple[str, ...]]:
    from .._formats import _generic_csv, _generic_jsonl

    csv_path, jsonl_path = folder / "captions.csv", folder / "captions.jsonl"
    if csv_path.is_file():
        entries = _generic_csv(csv_path, folder)
    elif jsonl_path.is_file():
        entries = _generic_jsonl(jsonl_path, folder)
    else:
        return {}
    out: dict[Path, tuple[str, ...]] = {}
    for _, path, captions in entries:
        resolved = path.resolve()
        if not resolved.is_relative_to(folder):
            raise DatasetError(f"{folder}: captions name {path}, outside the folder")
        out[resolved] = tuple(captions)
    return out


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UnusableSourceError(str(path), f"cannot read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def units(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    *,
    max_pixels: int,
    pdf_scale: float,
    with_text: bool,
    documents: DocumentOptions | None = None,
) -> Iterator[Unit | PageRecord]:
    """The items of one file, each with the image or text to embed, lazily (page by page).

    A document collection's files also yield a `PageRecord` per page read for text.
    """
    if source.path.stat().st_size == 0:
        raise UnusableSourceError(str(source.path), "empty file (0 bytes)")
    if documents is not None:
        from ._documents import document_units

        yield from document_units(
            source,
            tenant,
            content_hash,
            documents,
            max_pixels=max_pixels,
            pdf_scale=pdf_scale,
            with_text=with_text,
        )
    elif source.kind == "image":
        yield from image_units(source, tenant, content_hash, max_pixels, with_text)
    else:
        yield from _pdf_units(source, tenant, content_hash, max_pixels, pdf_scale, with_text)


def _item(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    modality: Modality,
    suffix: str = "",
    page: int | None = None,
    text: str | None = None,
) -> Item:
    return Item(
        id=str(source.path) + suffix,
        tenant=tenant,
        source=Provenance(str(source.path), content_hash, page),
        modality=modality,
        text=text,
    )


def image_units(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    max_pixels: int,
    with_text: bool,
    *,
    with_image: bool = True,
) -> Iterator[Unit]:
    image = decode_image(source.path, max_pixels)
    caption = source.captions[0] if source.captions else None
    if with_image:
        yield Unit(_item(source, tenant, content_hash, "image", text=caption), image=image)
    if with_text:
        for i, text in enumerate(source.captions):
            item = _item(source, tenant, content_hash, "text", f"#caption{i}", text=text)
            yield Unit(item, text=text)


def decode_image(path: Path, max_pixels: int) -> Image:
    """Decode an image's first frame to RGB, refusing bombs, truncation and other formats."""
    from PIL import Image as PILImage

    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableSourceError(name, f"cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise UnusableSourceError(name, "empty file (0 bytes)")
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise UnusableSourceError(
                    name,
                    f"claims {width}x{height} pixels, over the {max_pixels:,} allowed "
                    "(index.max_image_pixels); refused as a possible decompression bomb",
                )
            if img.format not in IMAGE_FORMATS:
                raise UnusableSourceError(name, f"is a {img.format} image; index takes {SUPPORTED}")
            img.seek(0)
            return img.convert("RGB")
    except UnusableSourceError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise UnusableSourceError(name, f"refused as a decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnusableSourceError(name, f"corrupt or truncated image ({exc})") from exc


def _pdf_units(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    max_pixels: int,
    scale: float,
    with_text: bool,
) -> Iterator[Unit]:
    import pypdfium2 as pdfium

    name = str(source.path)
    document = open_pdf(source.path)
    try:
        for number in range(len(document)):
            page = document[number]
            check_page_size(name, number + 1, page, scale, max_pixels)
            try:
                image = page.render(scale=scale).to_pil().convert("RGB")
                textpage = page.get_textpage()
                text = textpage.get_text_range().replace("\r\n", "\n").strip() or None
            except pdfium.PdfiumError as exc:
                raise UnreadableDocumentError(
                    name, f"page {number + 1} cannot be rendered ({exc})"
                ) from exc
            page_item = _item(
                source, tenant, content_hash, "page", f"#p{number + 1}", number + 1, text
            )
            yield Unit(page_item, image=image)
            if with_text and text:
                text_item = _item(
                    source, tenant, content_hash, "text", f"#p{number + 1}:text", number + 1, text
                )
                yield Unit(text_item, text=text)
    finally:
        document.close()


def open_pdf(path: Path) -> Any:
    """A pypdfium2 document, or an `UnreadableDocumentError` saying why it cannot be read."""
    import pypdfium2 as pdfium

    name = str(path)
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        # pypdfium2 names the cause in its message only; FPDF_ERR_PASSWORD reads "password".
        if "password" in str(exc).lower():
            raise UnreadableDocumentError(
                name, "encrypted PDF (it needs a password); decrypt it and index the copy"
            ) from exc
        raise UnreadableDocumentError(name, f"not a readable PDF ({exc})") from exc
    if len(document) == 0:
        document.close()
        raise UnreadableDocumentError(name, "the PDF has no pages; nothing to index")
    return document


def check_page_size(name: str, number: int, page: Any, scale: float, max_pixels: int) -> None:
    """Refuse a page that would render to more pixels than allowed (a bomb, or one huge image)."""
    width, height = page.get_size()
    pixels = int(width * scale) * int(height * scale)
    if pixels > max_pixels:
        raise UnusableSourceError(
            name,
            f"page {number} would render to {pixels:,} pixels, over the {max_pixels:,} allowed "
            "(index.max_image_pixels); lower index.pdf_scale",
        )
