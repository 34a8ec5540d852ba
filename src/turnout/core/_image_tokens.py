"""How many input tokens an image becomes, one function per provider's documented rule.

Each rule is a small pydantic model holding its parameters (so the catalog can carry
them as data) with a `count(width, height, detail)` method that returns the tokens and
the steps that produced them. Arithmetic is exact (integers and fractions) wherever the
provider's rule is, so boundary cases do not flip on float error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import InvalidDetailError, InvalidSizeError

# No real image comes near this; a header claiming more is treated as absurd.
MAX_SIDE = 1_000_000


class Detail(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    ULTRA_HIGH = "ultra_high"
    AUTO = "auto"


def parse_detail(value: str | Detail) -> Detail:
    try:
        return Detail(str(value).lower().replace("-", "_"))
    except ValueError:
        valid = ", ".join(d.value for d in Detail)
        raise InvalidDetailError(
            f"unknown detail level {value!r}; expected one of {valid}"
        ) from None


@dataclass(frozen=True)
class ImageTokens:
    """The token count of one image, with the work shown."""

    tokens: int
    width: int
    height: int
    processed_size: tuple[int, int]
    detail: Detail
    rule: str
    steps: tuple[str, ...]
    documented: bool = True  # False where the rule is derived, not a provider's billing rule


def check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidSizeError(f"image {name} must be a whole number of pixels, got {value!r}")
        if value <= 0:
            raise InvalidSizeError(f"image {name} must be positive, got {value}")
        if value > MAX_SIDE:
            raise InvalidSizeError(
                f"image {name} {value} px is beyond any real image (limit {MAX_SIDE:,} px)"
            )


def _ceil(value: Fraction) -> int:
    return math.ceil(value)


def _fmt(value: Fraction) -> str:
    return str(int(value)) if value.denominator == 1 else f"{float(value):.1f}"


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    documented: bool = True

    def _reject(self, detail: Detail, allowed: str) -> InvalidDetailError:
        rule = getattr(self, "rule", type(self).__name__)
        return InvalidDetailError(
            f"detail {detail.value!r} is not defined for the {rule} rule; use {allowed}"
        )


class OpenAITileRule(_Rule):
    """GPT-4o, 4.1, 4.5, o1, o3: base tokens plus tile tokens per 512 px tile."""

    rule: Literal["openai_tile"] = "openai_tile"
    base: int = Field(gt=0)
    tile: int = Field(gt=0)
    fit_px: int = 2048
    short_side_px: int = 768
    tile_px: int = 512

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        if detail not in (Detail.LOW, Detail.HIGH, Detail.AUTO):
            raise self._reject(detail, "low, high or auto")
        if detail is Detail.LOW:
            return ImageTokens(
                self.base,
                width,
                height,
                (width, height),
                detail,
                self.rule,
                (f"detail=low: flat {self.base} base tokens",),
            )
        steps = []
        if detail is Detail.AUTO:
            steps.append("detail=auto: counted as high (the model may choose high)")
        w, h = Fraction(width), Fraction(height)
        if max(w, h) > self.fit_px:
            scale = Fraction(self.fit_px) / max(w, h)
            w, h = w * scale, h * scale
            steps.append(f"fit within {self.fit_px}x{self.fit_px}: {_fmt(w)}x{_fmt(h)}")
        if min(w, h) > self.short_side_px:
            scale = Fraction(self.short_side_px) / min(w, h)
            w, h = w * scale, h * scale
            steps.append(f"shortest side to {self.short_side_px}: {_fmt(w)}x{_fmt(h)}")
        cols, rows = _ceil(w / self.tile_px), _ceil(h / self.tile_px)
        tokens = self.base + self.tile * cols * rows
        steps.append(
            f"{cols}x{rows} tiles of {self.tile_px} px: "
            f"{self.base} + {self.tile} x {cols * rows} = {tokens}"
        )
        return ImageTokens(
            tokens, width, height, (round(w), round(h)), Detail.HIGH, self.rule, tuple(steps)
        )


class OpenAIPatchRule(_Rule):
    """gpt-4.1-mini, gpt-4.1-nano, o4-mini: 32 px patches, capped, times a multiplier."""

    rule: Literal["openai_patch"] = "openai_patch"
    multiplier: Decimal = Field(gt=0)
    patch_px: int = 32
    max_patches: int = 1536

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        if detail not in (Detail.LOW, Detail.HIGH, Detail.AUTO):
            raise self._reject(detail, "low, high or auto")
        p = self.patch_px
        cols, rows = -(-width // p), -(-height // p)
        steps = [f"{cols}x{rows} patches of {p} px = {cols * rows}"]
        size = (width, height)
        if cols * rows > self.max_patches:
            # OpenAI's documented shrink: scale to the patch budget, then shrink further
            # so a whole number of patches fits along the tighter side.
            shrink = math.sqrt(p * p * self.max_patches / (width * height))
            fit_cols = max(1, math.floor(width * shrink / p))
            fit_rows = max(1, math.floor(height * shrink / p))
            if fit_cols * height <= fit_rows * width:
                cols, rows = fit_cols, _ceil(Fraction(fit_cols * height, width))
                size = (cols * p, round(Fraction(cols * p * height, width)))
            else:
                cols, rows = _ceil(Fraction(fit_rows * width, height)), fit_rows
                size = (round(Fraction(rows * p * width, height)), rows * p)
            steps.append(
                f"over {self.max_patches}: resized to {size[0]}x{size[1]}, "
                f"{cols}x{rows} = {cols * rows} patches"
            )
        patches = min(cols * rows, self.max_patches)
        tokens = int((Decimal(patches) * self.multiplier).to_integral_value(ROUND_CEILING))
        steps.append(f"{patches} patches x {self.multiplier} = {tokens} tokens (rounded up)")
        return ImageTokens(tokens, width, height, size, detail, self.rule, tuple(steps))


class AnthropicRule(_Rule):
    """Claude: about width x height / 750 tokens, after downscaling large images."""

    rule: Literal["anthropic"] = "anthropic"
    max_long_edge: int = 1568
    max_pixels: int = 1092 * 1092  # the largest 1:1 size Anthropic lists as not resized
    pixels_per_token: int = 750

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        steps = []
        if detail is not Detail.AUTO:
            steps.append(f"detail={detail.value}: Claude has no detail setting; ignored")
        w, h = width, height
        if max(w, h) > self.max_long_edge or w * h > self.max_pixels:
            scale = min(self.max_long_edge / max(w, h), math.sqrt(self.max_pixels / (w * h)))
            w, h = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
            steps.append(
                f"downscaled to {w}x{h} (long edge <= {self.max_long_edge}, "
                f"<= {self.max_pixels:,} px)"
            )
        tokens = _ceil(Fraction(w * h, self.pixels_per_token))
        steps.append(f"{w} x {h} / {self.pixels_per_token} = {tokens} tokens (rounded up)")
        return ImageTokens(tokens, width, height, (w, h), detail, self.rule, tuple(steps))


class GeminiTileRule(_Rule):
    """Gemini 2.x: 258 tokens up to 384 px on both sides, else 258 per 768 px tile."""

    rule: Literal["gemini_tiles"] = "gemini_tiles"
    small_px: int = 384
    tile_px: int = 768
    tokens_per_tile: int = 258

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        steps = []
        if detail is not Detail.AUTO:
            steps.append(f"detail={detail.value}: Gemini 2.x has no detail setting; ignored")
        if width <= self.small_px and height <= self.small_px:
            tiles = 1
            steps.append(f"both sides <= {self.small_px}: one unit of {self.tokens_per_tile}")
        else:
            cols, rows = -(-width // self.tile_px), -(-height // self.tile_px)
            tiles = cols * rows
            steps.append(f"{cols}x{rows} tiles of {self.tile_px} px x {self.tokens_per_tile}")
        tokens = tiles * self.tokens_per_tile
        return ImageTokens(tokens, width, height, (width, height), detail, self.rule, tuple(steps))


class GeminiMediaResolutionRule(_Rule):
    """Gemini 3: a fixed token count per image for each `media_resolution` level."""

    rule: Literal["gemini_media_resolution"] = "gemini_media_resolution"
    levels: dict[str, int] = Field(
        default_factory=lambda: {"low": 280, "medium": 560, "high": 1120, "ultra_high": 2240}
    )
    default: str = "high"

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        level = self.default if detail is Detail.AUTO else detail.value
        if level not in self.levels:
            raise self._reject(detail, ", ".join([*self.levels, "auto"]))
        tokens = self.levels[level]
        step = f"media_resolution={level}: {tokens} tokens per image"
        return ImageTokens(
            tokens, width, height, (width, height), Detail(level), self.rule, (step,)
        )


class QwenVLRule(_Rule):
    """Qwen2-VL and Qwen2.5-VL: `smart_resize` to multiples of 28 px, one token per 28x28."""

    rule: Literal["qwen_vl"] = "qwen_vl"
    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 16384
    max_aspect: int = 200

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        if max(width, height) / min(width, height) > self.max_aspect:
            raise InvalidSizeError(
                f"aspect ratio of {width}x{height} exceeds {self.max_aspect}, "
                "which the Qwen-VL processor rejects"
            )
        f = self.factor
        # Python's round() (half to even) is what the reference processor uses.
        w, h = round(width / f) * f, round(height / f) * f
        if w * h > self.max_pixels:
            beta = math.sqrt(width * height / self.max_pixels)
            w, h = math.floor(width / beta / f) * f, math.floor(height / beta / f) * f
        elif w * h < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (width * height))
            w, h = math.ceil(width * beta / f) * f, math.ceil(height * beta / f) * f
        tokens = (w // f) * (h // f)
        step = f"smart_resize to {w}x{h}: {w // f}x{h // f} = {tokens} tokens"
        return ImageTokens(tokens, width, height, (w, h), detail, self.rule, (step,), False)


class TilesWithThumbnailRule(_Rule):
    """Open models that cut an image into fixed tiles plus a global thumbnail
    (SmolVLM, Llama 4). Derived from their processor configs, not a billing rule."""

    rule: Literal["tiles_with_thumbnail"] = "tiles_with_thumbnail"
    tile_px: int = Field(gt=0)
    tokens_per_tile: int = Field(gt=0)
    max_long_edge: int = Field(gt=0)
    max_tiles: int = Field(gt=0)
    documented: bool = False

    def count(self, width: int, height: int, detail: Detail) -> ImageTokens:
        check_size(width, height)
        w, h = Fraction(width), Fraction(height)
        if max(w, h) > self.max_long_edge:
            scale = Fraction(self.max_long_edge) / max(w, h)
            w, h = w * scale, h * scale
        tiles = _ceil(w / self.tile_px) * _ceil(h / self.tile_px)
        tiles = min(tiles, self.max_tiles)
        thumbnail = 1 if tiles > 1 else 0
        tokens = (tiles + thumbnail) * self.tokens_per_tile
        step = (
            f"{tiles} tile(s) of {self.tile_px} px + {thumbnail} thumbnail, "
            f"{self.tokens_per_tile} tokens each = {tokens}"
        )
        return ImageTokens(
            tokens, width, height, (round(w), round(h)), detail, self.rule, (step,), False
        )


ImageTokenRule = Annotated[
    OpenAITileRule
    | OpenAIPatchRule
    | AnthropicRule
    | GeminiTileRule
    | GeminiMediaResolutionRule
    | QwenVLRule
    | TilesWithThumbnailRule,
    Field(discriminator="rule"),
]
