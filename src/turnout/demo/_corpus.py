"""The demo's corpus, made on the spot: real photographs (scikit-image's bundled ones), a
product handbook and a security policy as PDFs with a text layer, and a scanned document
of page images for the incident."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

# (file, caption) of photographs that ship inside scikit-image: real pixels, no download.
PHOTOS = (
    ("astronaut", "an astronaut in a spacesuit in front of a flag"),
    ("coffee", "a cup of coffee on a saucer"),
    ("chelsea", "a tabby cat looking to the side"),
    ("rocket", "a rocket standing on the launch pad"),
    ("camera", "a man with a camera on a tripod"),
    ("hubble_deep_field", "galaxies in deep space"),
    ("immunohistochemistry", "a stained tissue sample under a microscope"),
)

# The handbook: one topic per page, each with a fact a question asks for.
HANDBOOK = (
    (
        "Warranty",
        "Every Turnout Model 7 espresso machine carries a warranty of 24 months from the "
        "date of delivery. The warranty covers the pump, the boiler and the control board. "
        "It does not cover descaling damage or the glass carafe.",
    ),
    (
        "Returns",
        "Unopened machines can be returned within 30 days for a full refund. Opened machines "
        "are refunded at 85 percent of the price when returned within 14 days with every "
        "accessory in the original box.",
    ),
    (
        "Descaling",
        "Descale the boiler every 6 weeks with hard water, every 12 weeks with soft water. "
        "Run the descaling program from the service menu; it takes 25 minutes and needs "
        "one sachet of citric acid dissolved in 1 litre of water.",
    ),
    (
        "Shipping",
        "Orders ship from the Rotterdam warehouse within 2 working days. Delivery to the "
        "European Union takes 3 to 5 working days; shipping is free above 150 euros.",
    ),
    (
        "Support hours",
        "The support desk answers by phone on weekdays from 8:00 to 18:00 Central European "
        "Time and by email within one working day. Spare parts are stocked for 10 years.",
    ),
    (
        "Data and privacy",
        "The companion app stores brewing history on the device only. Account data is kept "
        "for 90 days after an account is closed, then deleted from every backup.",
    ),
)
# (question, the handbook page that answers it, 1-based)
HANDBOOK_QUESTIONS = (
    ("How long is the warranty on the Model 7 espresso machine, per the handbook?", 1),
    ("What refund do I get for an opened machine returned within 14 days?", 2),
    ("How often should I descale the boiler with hard water? Check the documents.", 3),
    ("From which warehouse do orders ship, and when is shipping free?", 4),
    ("When is the support desk open by phone, according to the manual?", 5),
    ("How long is account data kept after an account is closed?", 6),
)

POLICY = (
    (
        "Access control",
        "Production access at Globex requires a hardware security key and is reviewed "
        "every quarter by the platform team.",
    ),
    (
        "Incident response",
        "Security incidents are acknowledged within 15 minutes and a written report is "
        "due within 5 working days.",
    ),
)
POLICY_QUESTIONS = (
    ("According to our policy documents, how fast must a security incident be acknowledged?", 2),
)

SCAN_PAGES = 487  # the seed's incident: a 487-page scanned PDF, sent as page images
SCAN_SIZE = (2550, 3300)  # US letter at 300 dpi


@dataclass(frozen=True)
class Corpus:
    photos: Path  # a folder with captions.csv
    handbook: Path  # a PDF
    policy: Path  # a PDF, uploaded through the gateway by the second tenant
    scan_pages: tuple[bytes, ...]  # PNG bytes of each page of the scanned document

    @property
    def photo_files(self) -> list[Path]:
        return sorted(p for p in self.photos.iterdir() if p.suffix == ".jpg")


def make_corpus(folder: Path) -> Corpus:
    folder.mkdir(parents=True, exist_ok=True)
    return Corpus(
        photos=_photos(folder / "photos"),
        handbook=_pdf(folder / "docs" / "model-7-handbook.pdf", "Model 7 handbook", HANDBOOK),
        policy=_pdf(folder / "globex" / "security-policy.pdf", "Globex security", POLICY),
        scan_pages=_scan(),
    )


def _photos(folder: Path) -> Path:
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "captions.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "caption"])
        for name, caption in PHOTOS:
            pixels = getattr(skimage.data, name)()
            Image.fromarray(pixels).convert("RGB").save(folder / f"{name}.jpg", quality=90)
            writer.writerow([f"{name}.jpg", caption])
    return folder


def _pdf(path: Path, title: str, pages: tuple[tuple[str, str], ...]) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    for n, (heading, body) in enumerate(pages, 1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", size=18)
        pdf.multi_cell(500, 26, f"{title}, page {n}: {heading}")
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(500, 18, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def _scan(layouts: int = 61) -> tuple[bytes, ...]:
    """Page images of a scan: black lines of 'text' on white, 1-bit PNG. Only a page's size
    decides its image tokens, so the pages cycle through a few dozen layouts rather than
    drawing 487 (which would take 10 s of the demo's time)."""
    from PIL import Image, ImageDraw

    width, height = SCAN_SIZE
    drawn = []
    for i in range(layouts):
        page = Image.new("1", SCAN_SIZE, 1)
        draw = ImageDraw.Draw(page)
        for y in range(300, height - 200, 60):
            draw.rectangle((250, y, width - 250 - (i * 37 + y) % 600, y + 18), fill=0)
        out = io.BytesIO()
        page.save(out, "PNG", compress_level=1)
        drawn.append(out.getvalue())
    return tuple(drawn[i % layouts] for i in range(SCAN_PAGES))
