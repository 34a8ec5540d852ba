"""Image-text dual encoders: one interface, one implementation over Hugging Face transformers.

`embed_texts` and `embed_images` return L2-normalised float32 arrays of shape [n, d].
Images are decoded and preprocessed on worker threads while the model runs; texts are
tokenized once, sorted by length and padded per batch as the family's card prescribes.
On a CPU, batches run in a few concurrent streams that share the cores.

The model is run through `_text_outputs`/`_image_outputs`, which return the model's full
output; `_pooled` reads the one vector per item. Token-level (late-interaction) encoders
read `last_hidden_state` from the same outputs, through the same batching.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._errors import EncoderLoadError, UnreadableImageError
from ._families import family_for
from ._images import ImageSource, decode_rgb, source_name
from ._pipeline import batched, default_streams, default_workers, in_streams, prepared_in_order
from ._spec import EncoderSpec, ResolvedModel, resolve_encoder_spec

if TYPE_CHECKING:
    import torch

Progress = Callable[[int], None]
"""Called with the number of items finished since the last call."""

Device = Literal["cpu", "cuda", "mps"]
DType = Literal["float32", "float16", "bfloat16"]

# Bump when the meaning of a cached vector changes (pooling, normalisation).
EMBEDDING_FORMAT = 1


@runtime_checkable
class DualEncoder(Protocol):
    """Anything that embeds texts and images into one space, for retrieval evaluation."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    def identity(self) -> dict[str, Any]: ...

    def embed_texts(
        self, texts: Sequence[str], *, progress: Progress | None = None
    ) -> NDArray[np.float32]: ...

    def embed_images(
        self, images: Sequence[ImageSource], *, progress: Progress | None = None
    ) -> NDArray[np.float32]: ...


@dataclass(frozen=True)
class EncoderOptions:
    """How to run an encoder; none of these change what a vector means except `dtype`."""

    device: Device = "cpu"
    dtype: DType = "float32"
    batch_size: int = 32
    # Threads that decode and preprocess images; 0 runs them in series with the model.
    workers: int = field(default_factory=default_workers)
    # torch's intra-op threads (process-wide); None keeps torch's default, one per core.
    threads: int | None = None
    # Concurrent forward passes sharing those threads; None: 2 to 4 on a CPU, 1 elsewhere.
    streams: int | None = None


class HFDualEncoder:
    """A CLIP, SigLIP or SigLIP 2 checkpoint loaded with transformers."""

    def __init__(self, resolved: ResolvedModel, options: EncoderOptions | None = None) -> None:
        self.resolved = resolved
        self.options = options or EncoderOptions()
        if self.options.batch_size < 1:
            raise EncoderLoadError(f"batch size must be at least 1, got {self.options.batch_size}")
        self.family = family_for(_read_model_type(resolved), resolved.spec.text)
        self._torch_device, self._torch_dtype = _device_and_dtype(self.options)
        self._load()
        self.max_text_length = self.family.max_text_length(self.model.config)
        self.truncated_texts = 0

    def _load(self) -> None:
        import torch
        from safetensors import SafetensorError
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        path = str(self.resolved.path)
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        self._threads = torch.get_num_threads()
        self._streams = self.options.streams or default_streams(self.options.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.image_processor = AutoImageProcessor.from_pretrained(path, backend="pil")
            model = AutoModel.from_pretrained(path, dtype=self._torch_dtype)
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise EncoderLoadError(
                f"encoder {self.resolved.spec.text!r}: cannot load from {path}: {exc}"
            ) from exc
        self.model = model.to(self._torch_device).eval()

    @property
    def name(self) -> str:
        return self.resolved.spec.text

    @property
    def dim(self) -> int:
        config = self.model.config
        # CLIP projects both towers to projection_dim; SigLIP's heads keep the text width.
        if self.family.name == "clip":
            return int(config.projection_dim)
        return int(config.text_config.hidden_size)

    def identity(self) -> dict[str, Any]:
        """Everything that decides the vectors: model, revision, preprocessing, dtype."""
        processor = self.image_processor.to_dict()
        return {
            "model_id": self.resolved.model_id,
            "revision": self.resolved.revision,
            "family": self.family.name,
            "dtype": self.options.dtype,
            "embedding_format": EMBEDDING_FORMAT,
            "image_preprocessing": {"backend": "pil", **processor},
            "text_preprocessing": {
                "tokenizer": type(self.tokenizer).__name__,
                "padding": self.family.text_padding,
                "max_length": self.max_text_length,
            },
        }

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def embed_texts(
        self, texts: Sequence[str], *, progress: Progress | None = None
    ) -> NDArray[np.float32]:
        """Embed captions; one longer than the family's limit is truncated and counted."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.truncated_texts += self.count_truncated(texts)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_text_length)
        keys = [k for k in ("input_ids", "attention_mask") if k in encoded]
        fixed = self.family.text_padding == "max_length"

        def forward(chunk: list[int]) -> NDArray[np.float32]:
            batch = self.tokenizer.pad(
                {k: [encoded[k][i] for i in chunk] for k in keys},
                padding="max_length" if fixed else "longest",
                max_length=self.max_text_length if fixed else None,
                return_tensors="pt",
            )
            return self._pooled(self._text_outputs(dict(batch)))

        # Similar lengths in one batch waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
        size = self.options.batch_size
        chunks = [order[start : start + size] for start in range(0, len(order), size)]
        # One batch (a query) runs right here: a thread pool per call costs a millisecond.
        streams = self._streams if len(chunks) > 1 else 1
        results = in_streams(chunks, forward, streams=streams, threads=self._threads)
        for chunk, vectors in zip(chunks, results, strict=True):
            out[chunk] = vectors
            if progress:
                progress(len(chunk))
        return out

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many of `texts` are longer than the family's token limit."""
        if not texts:
            return 0
        full = self.tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]
        return sum(len(ids) > self.max_text_length for ids in full)

    def embed_images(
        self, images: Sequence[ImageSource], *, progress: Progress | None = None
    ) -> NDArray[np.float32]:
        """Embed images (paths, bytes or PIL images), in order."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start, vectors in self.embed_image_batches(images, progress=progress):
            out[start : start + len(vectors)] = vectors
        return out

    def embed_image_batches(
        self, images: Sequence[ImageSource], *, progress: Progress | None = None
    ) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """Yield `(start, vectors)` batch by batch, so a caller can keep what finished.

        An unreadable image raises UnreadableImageError with its index when its batch is
        reached; the batches before it have been yielded.
        """
        size = self.options.batch_size
        prepared = prepared_in_order(
            images,
            self._prepare_image,
            workers=self.options.workers,
            lookahead=(self._streams + 1) * size,
        )

        def forward(group: list[dict[str, NDArray[Any]]]) -> NDArray[np.float32]:
            inputs = {k: np.concatenate([g[k] for g in group]) for k in group[0]}
            return self._pooled(self._image_outputs(inputs))

        batches = batched(prepared, size)
        start = 0
        for vectors in in_streams(batches, forward, streams=self._streams, threads=self._threads):
            yield start, vectors
            start += len(vectors)
            if progress:
                progress(len(vectors))

    def _prepare_image(self, index: int, source: ImageSource) -> dict[str, NDArray[Any]]:
        image = decode_rgb(source, index)
        try:
            features = self.image_processor(images=[image], return_tensors="np")
        except (ValueError, OSError) as exc:
            # A decodable image the processor rejects (a 1-pixel strip, say) is unusable here.
            raise UnreadableImageError(
                source_name(source, index), f"preprocessing failed ({exc})", index
            ) from exc
        return {k: np.asarray(v) for k, v in features.items()}

    def _text_outputs(self, inputs: dict[str, Any]) -> Any:
        import torch

        tensors = {k: v.to(self._torch_device) for k, v in inputs.items()}
        with torch.inference_mode():
            return self.model.get_text_features(**tensors)

    def _image_outputs(self, inputs: dict[str, NDArray[Any]]) -> Any:
        import torch

        tensors = {}
        for key, value in inputs.items():
            tensor = torch.from_numpy(value).to(self._torch_device)
            tensors[key] = tensor.to(self._torch_dtype) if tensor.is_floating_point() else tensor
        with torch.inference_mode():
            return self.model.get_image_features(**tensors)

    @staticmethod
    def _pooled(outputs: Any) -> NDArray[np.float32]:
        import torch

        # transformers 5 returns an output object whose pooler_output is the projected embedding.
        vectors = outputs.pooler_output.float()
        normed = torch.nn.functional.normalize(vectors, dim=-1)
        return normed.cpu().numpy().astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"HFDualEncoder({self.name!r}, {asdict(self.options)})"


def load_encoder(
    spec: EncoderSpec | str,
    options: EncoderOptions | None = None,
    *,
    cache_dir: os.PathLike[str] | None = None,
) -> HFDualEncoder:
    """Build an encoder from a spec: hub id, `hf:<id>[@revision]` or a local directory."""
    from pathlib import Path

    resolved = resolve_encoder_spec(spec, cache_dir=Path(cache_dir) if cache_dir else None)
    return HFDualEncoder(resolved, options)


def best_device() -> Device:
    """cuda when torch sees a GPU, else mps on Apple silicon, else cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _read_model_type(resolved: ResolvedModel) -> str | None:
    config = resolved.path / "config.json"
    try:
        data = json.loads(config.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderLoadError(
            f"encoder {resolved.spec.text!r}: cannot read {config}: {exc}"
        ) from exc
    model_type = data.get("model_type") if isinstance(data, dict) else None
    return model_type if isinstance(model_type, str) else None


def _device_and_dtype(options: EncoderOptions) -> tuple[torch.device, torch.dtype]:
    import torch

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if options.dtype not in dtypes:
        raise EncoderLoadError(f"dtype {options.dtype!r}: expected one of {', '.join(dtypes)}")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise EncoderLoadError("device 'cuda': torch sees no CUDA GPU here; use --device cpu")
    if options.device == "mps" and not torch.backends.mps.is_available():
        raise EncoderLoadError("device 'mps': this torch build or machine has no Apple GPU")
    if options.device not in ("cpu", "cuda", "mps"):
        raise EncoderLoadError(f"device {options.device!r}: expected cpu, cuda or mps")
    return torch.device(options.device), dtypes[options.dtype]


def quiet_transformers() -> None:
    """Keep transformers' own load bars and notices out of a terminal turnout writes to."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
