"""Media in requests: data: URIs, and the guard on URLs an adapter fetches for a caller."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

from turnout.core import InvalidImageError


def split_data_uri(url: str) -> tuple[str, str] | None:
    """(media type, base64 payload) of a `data:` URI; None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url[5:].partition(",")
    media_type, *params = header.split(";")
    if not comma or "base64" not in params or not media_type or not payload:
        raise InvalidImageError(
            f"an image data URI must read 'data:<media type>;base64,<data>', got {url[:40]!r}..."
        )
    return media_type.strip().lower(), payload


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


async def check_public_url(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or reserved
    address: fetching whatever a caller names must not reach inside the network."""
    host = urlsplit(url).hostname
    if not host:
        raise InvalidImageError(f"image URL {url[:80]!r} has no host")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        raise InvalidImageError(f"image URL host {host!r} does not resolve ({exc})") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidImageError(
                f"image URL {url[:80]!r} points at a non-public address ({address}); "
                "turnout fetches only public images (set allow_private_image_urls to change this)"
            )
