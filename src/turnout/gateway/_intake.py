"""From request bytes to a validated ChatRequest and the facts routing needs.

Every way a body can be wrong ends here as a core InvalidInputError subclass with a
message naming the field; the HTTP edge maps it to a status.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from turnout.core import (
    ChatRequest,
    InvalidImageError,
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaError,
    read_image_size,
    sniff_format,
)


class MalformedBodyError(InvalidInputError):
    """The body is not JSON (400)."""


class RequestValidationError(InvalidInputError):
    """JSON of the wrong shape (422); `param` names the first offending field."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ImageFact:
    param: str  # where in the request, e.g. messages[1].content[0].image_url
    detail: str
    width: int | None = None  # None for remote URLs turnout has not fetched
    height: int | None = None
    format: str | None = None
    nbytes: int = 0


@dataclass(frozen=True)
class RequestFacts:
    """What the router and the accounting read off a request, computed once."""

    images: tuple[ImageFact, ...] = ()
    text_chars: int = 0
    has_tools: bool = False
    unknown_fields: tuple[str, ...] = field(default_factory=tuple)

    @property
    def largest_image_pixels(self) -> int:
        return max((i.width * i.height for i in self.images if i.width and i.height), default=0)


def parse_request(body: bytes, max_bytes: int) -> ChatRequest:
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"request body is {len(body):,} bytes; this gateway accepts at most {max_bytes:,}"
        )
    try:
        return ChatRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise MalformedBodyError(f"request body is not valid JSON: {first['msg']}") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise RequestValidationError("request body must be a JSON object", None) from None
        param = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
        raise RequestValidationError(f"invalid request: {problems(exc)}", param or None) from None


def problems(exc: ValidationError) -> str:
    """The first few validation errors, each as `where: what`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
    )


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes, what: str, max_bytes: int) -> Body:
    """A small JSON body (feedback, a search) as `model`; 413 over `max_bytes`, 400 else."""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"{what} body is {len(raw):,} bytes; at most {max_bytes:,}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {what}: {problems(exc)}") from None


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# Prefixes (in base64 characters) tried for the header before decoding the whole image:
# PNG, GIF and WebP sizes sit in the first bytes; a JPEG's can follow a large EXIF block.
_HEAD_CHARS = (4096, 131072)


def _data_uri_image(url: str, param: str, detail: str, allowed: Sequence[str]) -> ImageFact:
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise InvalidImageError(f"{param}: a data URI must be data:image/<type>;base64,<data>")
    # Validate the whole payload cheaply, then decode only as much as the header needs:
    # a full decode costs about 1 ms per 300 KB here, on every image of every request.
    try:
        raw = payload.encode("ascii")
    except UnicodeEncodeError:
        raw = b"!"
    padding = raw.find(b"=")
    if (
        not raw
        or len(raw) % 4
        or raw.translate(None, _B64_ALPHABET)
        or (padding != -1 and padding < len(raw) - 2)
    ):
        raise InvalidImageError(f"{param}: the data URI's base64 does not decode")
    nbytes = len(raw) // 4 * 3 - raw[-2:].count(b"=")
    for chars in (*_HEAD_CHARS, len(raw)):
        try:
            head = base64.b64decode(raw[:chars])
        except (binascii.Error, ValueError):
            raise InvalidImageError(f"{param}: the data URI's base64 does not decode") from None
        fmt = sniff_format(head[:32])
        if fmt is None:
            raise InvalidImageError(f"{param}: the data URI does not hold an image")
        if fmt not in allowed:
            raise UnsupportedMediaError(
                f"{param}: {fmt.upper()} images are not accepted; send one of {', '.join(allowed)}"
            )
        try:
            size = read_image_size(head, name=param)
        except InvalidImageError:
            if chars >= len(raw):
                raise
            continue  # the header runs past this prefix: read more
        return ImageFact(param, detail, size.width, size.height, fmt, nbytes)
    raise InvalidImageError(f"{param}: no image size found")


def inspect_request(request: ChatRequest, image_types: Sequence[str]) -> RequestFacts:
    images: list[ImageFact] = []
    chars = 0
    for m, message in enumerate(request.messages):
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for p, part in enumerate(message.content or ()):
            if part.type == "text":
                chars += len(part.text)
            elif part.type == "image_url":
                param = f"messages[{m}].content[{p}].image_url"
                url, detail = part.image_url.url, part.image_url.detail
                if url.startswith("data:"):
                    images.append(_data_uri_image(url, param, detail, image_types))
                elif url.startswith(("https://", "http://")):
                    images.append(ImageFact(param, detail))
                else:
                    raise InvalidImageError(
                        f"{param}.url must be an http(s) URL or a data: URI, got {url[:40]!r}"
                    )
    return RequestFacts(
        images=tuple(images),
        text_chars=chars,
        has_tools=bool(request.tools),
        unknown_fields=tuple(request.unknown_fields()),
    )
