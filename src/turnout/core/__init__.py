"""turnout's core: types, errors, the model catalog, image-token rules, pricing, settings.

Pure (no I/O beyond reading packaged data and the files a caller names), importable
without FastAPI, torch or any provider SDK.
"""

from ._accounting import count_image_tokens, media_tokens
from ._catalog import (
    Catalog,
    Latency,
    LongContextPrice,
    Modalities,
    Modality,
    ModelCard,
    Price,
    Provider,
    load_catalog,
)
from ._errors import (
    CatalogError,
    ConfigError,
    InvalidDetailError,
    InvalidImageError,
    InvalidInputError,
    InvalidSizeError,
    NotFoundError,
    TurnoutError,
    UnknownModelError,
)
from ._image_size import ImageSize, read_image_size, sniff_format
from ._image_tokens import (
    MAX_SIDE,
    AnthropicRule,
    Detail,
    GeminiMediaResolutionRule,
    GeminiTileRule,
    ImageTokenRule,
    ImageTokens,
    OpenAIPatchRule,
    OpenAITileRule,
    QwenVLRule,
    TilesWithThumbnailRule,
    parse_detail,
)
from ._pricing import MICRO, Cost, cost, from_micros, to_micros
from ._recommend import (
    Candidate,
    Dropped,
    Recommendation,
    Shape,
    Workload,
    WorkloadImage,
    load_shapes,
    price_workload,
    recommend,
)
from ._settings import Settings, load_settings
from ._usage import Usage

__all__ = [
    "MAX_SIDE",
    "MICRO",
    "AnthropicRule",
    "Candidate",
    "Catalog",
    "CatalogError",
    "ConfigError",
    "Cost",
    "Detail",
    "Dropped",
    "GeminiMediaResolutionRule",
    "GeminiTileRule",
    "ImageSize",
    "ImageTokenRule",
    "ImageTokens",
    "InvalidDetailError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidSizeError",
    "Latency",
    "LongContextPrice",
    "Modalities",
    "Modality",
    "ModelCard",
    "NotFoundError",
    "OpenAIPatchRule",
    "OpenAITileRule",
    "Price",
    "Provider",
    "QwenVLRule",
    "Recommendation",
    "Settings",
    "Shape",
    "TilesWithThumbnailRule",
    "TurnoutError",
    "UnknownModelError",
    "Usage",
    "Workload",
    "WorkloadImage",
    "cost",
    "count_image_tokens",
    "from_micros",
    "load_catalog",
    "load_settings",
    "load_shapes",
    "media_tokens",
    "parse_detail",
    "price_workload",
    "read_image_size",
    "recommend",
    "sniff_format",
    "to_micros",
]
