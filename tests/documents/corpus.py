"""PDFs with known text for document tests: text-layer pages, rotated raster scans of
rendered text, a garbage text layer over a scan, and broken files."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# One topic per page, each with words no other page has, so the right page is known.
MANUAL = (
    "Hydraulic pump maintenance. Inspect every valve and replace worn seals before winter. "
    "Record the pressure readings of each pump in the service log.",
    "Invoice policy. Suppliers send invoices within thirty days; finance pays approved "
    "invoices on the first Monday of each month by bank transfer.",
    "Travel expenses. Employees book trains in second class and claim hotel receipts "
    "through the expenses portal within two weeks of returning.",
    "Laboratory safety. Wear protective gloves and goggles when handling solvents, and "
    "store flammable liquids in the ventilated cabinet.",
)
ROTATED_TEXT = (
    "Lighthouse keeper logbook. The lamp was trimmed at dusk and the foghorn tested "
    "twice during the storm. Visibility dropped below one nautical mile after midnight."
)
UPSIDE_DOWN_TEXT = (
    "Orchard harvest notes. Apples were picked from the northern rows first and pears "
    "stored in the cold cellar. The cider press needs a new wooden basket."
)
UNDER_GARBAGE_TEXT = (
    "Beekeeping calendar. Check the hives for queen cells in spring and add supers when "
    "the honey flow starts. Treat the colonies against mites in late summer."
)
GARBAGE = "\u00a4\u00a6\u00a8 \u00ac\u00af\u00b0\u00b1 \u00b2\u00b3\u00b6 \u00b7\u00b8\u00b9 " * 4


def _lines(text: str, width: int = 44) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def rendered_text(text: str, *, size: int = 26) -> Image.Image:
    """Text rendered black on white, as a scanner would see a printed page."""
    font = ImageFont.load_default(size=size)
    lines = _lines(text)
    image = Image.new("RGB", (760, 80 + len(lines) * int(size * 1.6)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * int(size * 1.6)), line, fill="black", font=font)
    return image


def faint_scan(text: str) -> Image.Image:
    """A bad scan: tiny, blurred, low-contrast text that OCR reads with little confidence."""
    small = rendered_text(text, size=14).filter(ImageFilter.GaussianBlur(1.8))
    return Image.eval(small, lambda v: 100 + v * 155 // 255)


def _scan_page(pdf: object, image: Image.Image, ocr_scale: float = 3.0) -> None:
    """A page the size of the image at the OCR scale, the image filling it (no text layer)."""
    width, height = image.width / ocr_scale, image.height / ocr_scale
    pdf.add_page(format=(width, height))  # type: ignore[attr-defined]
    pdf.image(image, x=0, y=0, w=width, h=height)  # type: ignore[attr-defined]


def manual_pdf(path: Path, pages: tuple[str, ...] = MANUAL) -> Path:
    """Pages with a text layer, one known text per page."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(300, 300))
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(260, 16, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def scans_pdf(path: Path) -> Path:
    """Page 1: a scan turned 90 degrees; page 2: upside down; page 3: an upright scan under
    a text layer of garbage glyphs; no page has a usable text layer."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    _scan_page(pdf, rendered_text(ROTATED_TEXT).rotate(90, expand=True))
    _scan_page(pdf, rendered_text(UPSIDE_DOWN_TEXT).rotate(180, expand=True))
    _scan_page(pdf, rendered_text(UNDER_GARBAGE_TEXT))
    pdf.set_font("helvetica", size=6)
    pdf.set_text_color(255, 255, 255)
    pdf.set_xy(5, 5)
    pdf.multi_cell(200, 8, GARBAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def faint_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    _scan_page(pdf, faint_scan(MANUAL[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def zero_page_pdf(path: Path) -> Path:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def huge_page_pdf(path: Path) -> Path:
    """One page 12,000 pt square, filled by one image: 144 million pixels at 72 dpi."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(12000, 12000))
    pdf.add_page()
    pdf.image(rendered_text("a very large scanned poster"), x=0, y=0, w=12000, h=12000)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
