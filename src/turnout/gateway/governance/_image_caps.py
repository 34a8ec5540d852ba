"""The per-request image-token cap: count every image with the target model's rule,
then, over the cap, either refuse (413) or bring the request under it.

Downscaling first sends the costliest images at `detail: low` (OpenAI-style rules bill
low detail at a flat rate); where that is not enough (rules without a detail switch,
such as Anthropic's and Gemini's tiles), images sent inline are resized, largest first,
until the count fits. Remote images cannot be resized without fetching them; a request
that still does not fit is refused with the counts.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from turnout.core import ChatRequest, ImagePart, ImageTokenCapError, ModelCard, PayloadTooLargeError

from .._intake import ImageFact, RequestFacts
from ._worst_case import image_tokens

# Long sides tried, in order, when resizing an inline image to fit the cap.
_SIDES = (1024, 768, 512, 384, 256)


@dataclass(frozen=True)
class Capped:
    request: ChatRequest
    facts: RequestFacts
    counted: int  # image tokens before any change, by the costliest model on the ladder
    sent: int  # image tokens after
    note: str | None  # what was changed, for the response header


def count(cards: Sequence[ModelCard], images: Sequence[ImageFact]) -> list[int]:
    """Tokens per image by the costliest model that may be called."""
    return [max((image_tokens(c, i) for c in cards), default=0) for i in images]


def _locate(param: str) -> tuple[int, int]:
    # "messages[3].content[7].image_url" -> (3, 7)
    m = param.split("messages[", 1)[1].split("]", 1)[0]
    p = param.split("content[", 1)[1].split("]", 1)[0]
    return int(m), int(p)


def _rewrite(request: ChatRequest, changes: dict[str, ImagePart]) -> ChatRequest:
    messages = list(request.messages)
    by_message: dict[int, dict[int, ImagePart]] = {}
    for param, part in changes.items():
        m, p = _locate(param)
        by_message.setdefault(m, {})[p] = part
    for m, parts in by_message.items():
        content = list(messages[m].content or [])
        for p, part in parts.items():
            content[p] = part
        messages[m] = messages[m].model_copy(update={"content": content})
    return request.model_copy(update={"messages": messages})


def _resized(url: str, side: int) -> tuple[str, int, int, int] | None:
    """The data URI re-encoded with its long side at most `side` px (None if not smaller)."""
    from PIL import Image, UnidentifiedImageError

    payload = url.partition(",")[2]
    try:
        with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
            if max(img.size) <= side:
                return None
            img.thumbnail((side, side))
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=85)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None
    data = out.getvalue()
    return (
        "data:image/jpeg;base64," + base64.b64encode(data).decode(),
        img.width,
        img.height,
        len(data),
    )


def apply_cap(
    request: ChatRequest,
    facts: RequestFacts,
    cards: Sequence[ModelCard],
    *,
    cap: int | None,
    max_images: int | None,
    policy: str,
    tenant: str,
) -> Capped:
    images = list(facts.images)
    if max_images is not None and len(images) > max_images:
        raise PayloadTooLargeError(
            f"the request carries {len(images)} images; tenant {tenant} allows at most "
            f"{max_images} per request (a document's pages count one each)"
        )
    tokens = count(cards, images)
    counted = sum(tokens)
    if cap is None or counted <= cap:
        return Capped(request, facts, counted, counted, None)
    if policy == "reject":
        raise ImageTokenCapError(
            f"the request's {len(images)} images count {counted:,} image tokens on the "
            f"costliest model it may be sent to; tenant {tenant} allows {cap:,} per request "
            "(send fewer or smaller images, or detail=low)",
            counted=counted,
            cap=cap,
        )
    parts: dict[str, ImagePart] = {}
    lowered = resized = 0
    total = counted
    for i in sorted(range(len(images)), key=lambda k: -tokens[k]):
        if total <= cap:
            break
        image = images[i]
        if image.detail != "low":
            low = replace(image, detail="low")
            low_tokens = count(cards, [low])[0]
            if low_tokens < tokens[i]:
                images[i], total, tokens[i] = low, total - tokens[i] + low_tokens, low_tokens
                parts[image.param] = _part(request, image.param, detail="low")
                lowered += 1
    if total > cap:
        # Sizes come from the headers, so the whole plan is made before decoding anything;
        # only images that are actually resized get decoded, and a hopeless request none.
        shrinkable = [
            i for i in range(len(images)) if images[i].width and _url(request, parts, images[i])
        ]
        smallest = {i: _shrunk(cards, images[i], _SIDES[-1]) for i in shrinkable}
        floor = total - sum(tokens[i] - smallest[i][1] for i in shrinkable)
        if floor <= cap:
            for i in sorted(shrinkable, key=lambda k: -tokens[k]):
                if total <= cap:
                    break
                choice = smallest[i]
                for side in _SIDES:  # the largest side that fits, else the smallest
                    option = _shrunk(cards, images[i], side)
                    if total - tokens[i] + option[1] <= cap:
                        choice = option
                        break
                target, new_tokens = choice
                if new_tokens >= tokens[i]:
                    continue
                image = images[i]
                part = parts.get(image.param) or _part(request, image.param)
                encoded = _resized(part.image_url.url, max(target.width or 0, target.height or 0))
                if encoded is None:
                    continue
                url, width, height, nbytes = encoded
                small = replace(image, width=width, height=height, format="jpeg", nbytes=nbytes)
                new_tokens = count(cards, [small])[0]
                images[i] = small
                total, tokens[i] = total - tokens[i] + new_tokens, new_tokens
                parts[image.param] = ImagePart(
                    type="image_url", image_url=part.image_url.model_copy(update={"url": url})
                )
                resized += 1
        else:
            total = floor
    if total > cap:
        raise ImageTokenCapError(
            f"the request's {len(images)} images count {counted:,} image tokens; even at "
            f"detail=low and downscaled they count {total:,}, over tenant {tenant}'s cap of "
            f"{cap:,} per request (send fewer images)",
            counted=counted,
            cap=cap,
        )
    done = []
    if lowered:
        done.append(f"{lowered} image(s) sent at detail=low")
    if resized:
        done.append(f"{resized} resized")
    note = f"{'; '.join(done)}: {counted} -> {total} image tokens (cap {cap})"
    return Capped(
        _rewrite(request, parts), replace(facts, images=tuple(images)), counted, total, note
    )


def _url(request: ChatRequest, parts: dict[str, ImagePart], image: ImageFact) -> bool:
    """Whether the image is inline (a data URI), so turnout can resize it."""
    part = parts.get(image.param) or _part(request, image.param)
    return part.image_url.url.startswith("data:")


def _shrunk(cards: Sequence[ModelCard], image: ImageFact, side: int) -> tuple[ImageFact, int]:
    """The image as it would be with its long side at most `side`, and its tokens."""
    width, height = image.width or 0, image.height or 0
    scale = min(1.0, side / max(width, height, 1))
    small = replace(image, width=max(1, int(width * scale)), height=max(1, int(height * scale)))
    return small, count(cards, [small])[0]


def _part(request: ChatRequest, param: str, *, detail: str | None = None) -> ImagePart:
    m, p = _locate(param)
    content = request.messages[m].content
    assert isinstance(content, list)
    part = content[p]
    assert isinstance(part, ImagePart)
    if detail is None:
        return part
    return ImagePart(
        type="image_url", image_url=part.image_url.model_copy(update={"detail": detail})
    )
