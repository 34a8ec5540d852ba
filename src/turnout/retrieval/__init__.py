"""turnout's retrieval layer: image-text encoders, datasets, an embedding cache, exact search.

Depends only on `turnout.core`. torch, transformers, faiss and huggingface_hub are imported
inside the functions that use them (install them with `pip install 'turnout[retrieval]'`).

    from turnout.retrieval import EncoderOptions, load_dataset, load_encoder

    encoder = load_encoder("openai/clip-vit-base-patch32", EncoderOptions(batch_size=64))
    dataset = load_dataset("flickr30k")
    images = encoder.embed_images([item.path for item in dataset.items])
"""

from ._cache import EmbeddingCache
from ._datasets import (
    STANDARD_SPLITS,
    ImageCaptions,
    RetrievalDataset,
    load_caption_folder,
    load_coco,
    load_dataset,
    load_flickr30k,
    load_karpathy,
)
from ._encoders import (
    EMBEDDING_FORMAT,
    DualEncoder,
    EncoderOptions,
    HFDualEncoder,
    Progress,
    best_device,
    load_encoder,
    quiet_transformers,
)
from ._errors import (
    DatasetError,
    DatasetNotFoundError,
    EncoderLoadError,
    UnknownEncoderError,
    UnreadableImageError,
)
from ._families import CLIP, FAMILIES, SIGLIP, SIGLIP2, EncoderFamily
from ._flickr import fetch_flickr30k
from ._images import ImageProbe, ImageSource, content_hash, decode_rgb, probe_image
from ._search import SearchResult, score_blocks, search_exact, top_k_rows
from ._spec import EncoderSpec, ResolvedModel, parse_encoder_spec, resolve_encoder_spec
from ._text_encoder import MINILM, SentenceTextEncoder, TextEncoder, load_text_encoder

__all__ = [
    "CLIP",
    "EMBEDDING_FORMAT",
    "FAMILIES",
    "MINILM",
    "SIGLIP",
    "SIGLIP2",
    "STANDARD_SPLITS",
    "DatasetError",
    "DatasetNotFoundError",
    "DualEncoder",
    "EmbeddingCache",
    "EncoderFamily",
    "EncoderLoadError",
    "EncoderOptions",
    "EncoderSpec",
    "HFDualEncoder",
    "ImageCaptions",
    "ImageProbe",
    "ImageSource",
    "Progress",
    "ResolvedModel",
    "RetrievalDataset",
    "SearchResult",
    "SentenceTextEncoder",
    "TextEncoder",
    "UnknownEncoderError",
    "UnreadableImageError",
    "best_device",
    "content_hash",
    "decode_rgb",
    "fetch_flickr30k",
    "load_caption_folder",
    "load_coco",
    "load_dataset",
    "load_encoder",
    "load_flickr30k",
    "load_karpathy",
    "load_text_encoder",
    "parse_encoder_spec",
    "probe_image",
    "quiet_transformers",
    "resolve_encoder_spec",
    "score_blocks",
    "search_exact",
    "top_k_rows",
]
