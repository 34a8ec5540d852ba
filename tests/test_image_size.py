from __future__ import annotations

import io
from pathlib import Path

import pytest

from turnout.core import InvalidImageError, read_image_size

from .images import jpeg_bytes, png_header_only, real_image


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("PNG", "png"),
        ("JPEG", "jpeg"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
    ],
)
def test_reads_real_files(tmp_path: Path, fmt: str, name: str) -> None:
    path = real_image(tmp_path / f"x.{name}", (640, 480), fmt)
    with path.open("rb") as fh:
        size = read_image_size(fh, name=str(path))
    assert (size.width, size.height, size.format) == (640, 480, name)


def test_reads_bytes() -> None:
    size = read_image_size(jpeg_bytes((33, 77)))
    assert (size.width, size.height) == (33, 77)


def test_exif_rotation_swaps_sides() -> None:
    from PIL import Image

    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW: a 400x300 sensor image displays as 300x400
    Image.new("RGB", (400, 300)).save(out, format="JPEG", exif=exif)
    size = read_image_size(out.getvalue())
    assert (size.width, size.height) == (300, 400)


def test_huge_header_is_read_without_decoding() -> None:
    data = png_header_only(100_000, 100_000)
    assert len(data) < 100
    size = read_image_size(data)
    assert (size.width, size.height) == (100_000, 100_000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is not an image at all", "not a supported image"),
        (png_header_only(0, 10), "zero-sized"),
        (png_header_only(3_000_000, 10), "beyond any real image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "corrupt PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "corrupt JPEG"),
    ],
)
def test_bad_images(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        read_image_size(data, name="upload.bin")


def test_error_names_the_source() -> None:
    with pytest.raises(InvalidImageError, match=r"^scan\.png: "):
        read_image_size(b"", name="scan.png")
