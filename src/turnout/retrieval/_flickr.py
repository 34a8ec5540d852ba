"""Fetching Flickr30K from the Hugging Face dataset `nlphuji/flickr30k`, once, into a folder.

Only the captions CSV and the images of the requested split are kept: the test split is
1,000 of the archive's 31,783 images. Offline, the error says which files to put where.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from ._errors import DatasetError, DatasetNotFoundError
from ._formats import read_flickr_csv

FLICKR_REPO = "nlphuji/flickr30k"
FLICKR_CSV = "flickr_annotations_30k.csv"
FLICKR_ZIP = "flickr30k-images.zip"
FLICKR_IMAGES = "flickr30k-images"


def _missing_images(root: Path, split: str | None) -> list[str]:
    entries = read_flickr_csv(root / FLICKR_CSV, root / FLICKR_IMAGES, split)
    return [path.name for _, path, _ in entries if not path.is_file()]


def fetch_flickr30k(
    root: Path, *, split: str | None = "test", log: Callable[[str], None] | None = None
) -> None:
    """Make sure `root` holds the CSV and the split's images, downloading what is missing."""
    say = log or (lambda _message: None)
    csv_path = root / FLICKR_CSV
    have_csv = csv_path.is_file()
    missing = _missing_images(root, split) if have_csv else None
    if missing == []:
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        if not have_csv:
            say(f"downloading {FLICKR_CSV} from {FLICKR_REPO}")
            found = hf_hub_download(FLICKR_REPO, FLICKR_CSV, repo_type="dataset")
            root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, csv_path)
            missing = _missing_images(root, split)
        if missing:
            say(f"downloading {FLICKR_ZIP} from {FLICKR_REPO} (about 4.4 GB, once)")
            archive = hf_hub_download(FLICKR_REPO, FLICKR_ZIP, repo_type="dataset")
            _extract(Path(archive), root / FLICKR_IMAGES, set(missing), say)
    except LocalEntryNotFoundError as exc:
        if (
            have_csv
            and missing is not None
            and len(missing) < len(read_flickr_csv(csv_path, root, split))
        ):
            say(f"offline: {len(missing)} Flickr30K image(s) are missing and will be reported")
            return
        raise DatasetNotFoundError(
            f"Flickr30K is not in {root} and the Hugging Face hub cannot be reached (offline). "
            f"Place {FLICKR_CSV} at {csv_path} and the images (unzipped from {FLICKR_ZIP}, "
            f"files such as 1000092795.jpg) in {root / FLICKR_IMAGES}/; both are in the "
            f"Hugging Face dataset {FLICKR_REPO}. Or pass flickr30k:DIR for a copy elsewhere."
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise DatasetNotFoundError(f"Flickr30K download from {FLICKR_REPO} failed: {exc}") from exc


def _extract(archive: Path, images: Path, wanted: set[str], say: Callable[[str], None]) -> None:
    images.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m).name: m for m in zf.namelist() if Path(m).name in wanted}
            say(f"extracting {len(members)} images into {images}")
            for name, member in members.items():
                partial = images / f".{name}.partial"
                with zf.open(member) as src, partial.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.replace(images / name)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive}: not a valid zip archive; delete it and retry") from exc
