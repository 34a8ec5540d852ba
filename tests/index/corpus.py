"""Corpora for index tests: real photographs (scikit-image), a generated PDF, bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "colorwheel")
CAPTIONS = {
    "astronaut": "a woman in a space suit",
    "coffee": "a cup of coffee on a saucer",
    "chelsea": "a tabby cat looking to the side",
    "rocket": "a rocket on a launch pad",
    "hubble_deep_field": "galaxies in deep space",
    "colorwheel": "a wheel of colours",
}


def photo(name: str, size: int = 96) -> Image.Image:
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    image.thumbnail((size, size))
    return image


def photo_folder(root: Path, names: tuple[str, ...] = PHOTOS, captions: bool = True) -> Path:
    """Photos as jpg, png, webp and gif, with captions.csv for the ones that have one."""
    root.mkdir(parents=True, exist_ok=True)
    formats = (".jpg", ".png", ".webp", ".gif")
    rows = ["image,caption"]
    for i, name in enumerate(names):
        suffix = formats[i % len(formats)]
        path = root / f"{name}{suffix}"
        photo(name).save(path)
        rows.append(f"{path.name},{CAPTIONS[name]}")
    if captions:
        (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root


def make_pdf(path: Path, pages: list[str], with_images: bool = True) -> Path:
    """A PDF with a text layer: one page per text, each with a photo drawn under it."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(300, 300))
    pdf.set_font("helvetica", size=14)
    for i, text in enumerate(pages):
        pdf.add_page()
        pdf.multi_cell(260, 18, text)
        if with_images:
            pdf.image(photo(PHOTOS[i % len(PHOTOS)], 120), x=40, y=100, w=200)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def truncated_jpeg(path: Path) -> Path:
    photo("coffee").save(path, format="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path
