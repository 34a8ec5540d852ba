"""The retrieval endpoints: search, item thumbnails, uploads and deletions.

    POST   /v1/search                          {"collection", "query"?, "image"?, "k", ...}
    GET    /v1/items/{id}/thumbnail            a JPEG of the item, longest side bounded
    POST   /v1/collections/{c}/items           multipart upload of images and PDFs
    DELETE /v1/collections/{c}/items/{id}      an item (an upload: its file and all its items)
    GET    /v1/collections/{c}                 the caller's items in it, and their freshness

Each is authenticated like chat completions, admitted by the tenant's and user's rate
limits, and scoped to the caller's tenant.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from turnout.core import (
    InvalidImageError,
    InvalidInputError,
    PayloadTooLargeError,
    Settings,
)

from ._intake import parse_body
from .governance import Caller, Governor
from .retrieval import Retrieval, Uploads
from .telemetry import Metrics

_MAX_SEARCH_BODY = 12 * 1024 * 1024


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(min_length=1, max_length=64)
    query: str | None = Field(default=None, max_length=4000)
    image: str | None = Field(default=None, description="data: URI or base64 of an image")
    k: int = 10
    filters: dict[str, Any] | None = None
    modality: Literal["image", "page", "text"] | None = None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _image_bytes(value: str) -> bytes:
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImageError(
            "image: expected a data:image/...;base64 URI or base64 of an image"
        ) from None


def search_routes(
    settings: Settings, governor: Governor, retrieval: Retrieval, metrics: Metrics | None = None
) -> APIRouter:
    """The routes; `metrics` (when on) counts searches and times their stages."""
    router = APIRouter()
    uploads = Uploads(settings, retrieval)

    async def admitted(request: Request, work: Callable[[Caller], Awaitable[Response]]) -> Response:
        """Authenticate, admit by the rate limits, run, release; limit headers on success."""
        caller = governor.identify(request.headers.get("authorization"), None)
        admission = await governor.admit(caller, 0)
        try:
            response = await work(caller)
        finally:
            await admission.release()
        for name, value in admission.headers.items():
            response.headers[name] = value
        return response

    @router.post("/v1/search")
    async def search(request: Request) -> Response:
        started = time.perf_counter()
        asked = parse_body(SearchQuery, await request.body(), "search", _MAX_SEARCH_BODY)

        kind = "both" if asked.query and asked.image else ("image" if asked.image else "text")

        async def work(caller: Caller) -> Response:
            try:
                found = await retrieval.search(
                    caller.tenant.id,
                    asked.collection,
                    text=asked.query,
                    image=_image_bytes(asked.image) if asked.image is not None else None,
                    k=asked.k,
                    filters=asked.filters,
                    modality=asked.modality,
                )
            except Exception as exc:
                if metrics is not None:
                    # not the asked name: a caller could mint label values without end
                    metrics.observe_search("-", kind, type(exc).__name__, {})
                raise
            total = time.perf_counter() - started
            timings = {
                "embed": round(found.embed_s * 1000, 3),
                "search": round(found.search_s * 1000, 3),
                "total": round(total * 1000, 3),
            }
            body = {
                "object": "list",
                "collection": found.collection,
                "data": [retrieval.describe(found.collection, hit) for hit in found.hits],
                "timings_ms": timings,
            }
            if metrics is not None:
                metrics.observe_search(found.collection, kind, "ok", timings)
            timing = ", ".join(f"{k};dur={v:.3f}" for k, v in timings.items())
            return _json(body, headers={"server-timing": timing})

        return await admitted(request, work)

    @router.get("/v1/items/{item_id}/thumbnail")
    async def thumbnail(item_id: str, request: Request) -> Response:
        async def work(caller: Caller) -> Response:
            _, item = await retrieval.item(caller.tenant.id, item_id)
            picture = await retrieval.picture(item, settings.search.thumbnail_side)
            return Response(
                picture,
                media_type="image/jpeg",
                headers={"cache-control": "private, max-age=300"},
            )

        return await admitted(request, work)

    @router.post("/v1/collections/{collection}/items")
    async def upload(collection: str, request: Request) -> Response:
        limit = settings.search.max_upload_bytes
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit + 64 * 1024:  # multipart framing on top of the files
            raise PayloadTooLargeError(
                f"upload of {declared:,} bytes; at most {limit:,} per request "
                "(search.max_upload_bytes)"
            )

        async def work(caller: Caller) -> Response:
            files = await _read_files(request)
            report = await uploads.add(caller.tenant.id, collection, files)
            if not report.files:
                reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in report.skipped)
                raise InvalidInputError(f"nothing was indexed: {reasons}")
            body = {
                "collection": collection,
                "items": report.items,
                "files": report.files,
                "skipped": report.skipped,
            }
            return _json(body, status=201)

        return await admitted(request, work)

    @router.delete("/v1/collections/{collection}/items/{item_id}")
    async def delete(collection: str, item_id: str, request: Request) -> Response:
        async def work(caller: Caller) -> Response:
            removed = await uploads.delete(caller.tenant.id, collection, item_id)
            return _json({"id": item_id, "deleted": True, "items_removed": removed})

        return await admitted(request, work)

    @router.get("/v1/collections/{collection}")
    async def describe(collection: str, request: Request) -> Response:
        from turnout.retrieval.index import freshness

        async def work(caller: Caller) -> Response:
            tenant = caller.tenant.id
            thread = await retrieval.visible(tenant, collection)
            known = await thread.run(lambda c: freshness(c, tenant=tenant))
            fresh = {
                "last_refresh": known.last_refresh,
                "pending": known.pending,
                "oldest_pending_age_s": known.oldest_pending_age_s,
                "slo_s": known.slo_s,
                "slo_ok": known.slo_ok,
                "failed": known.failed,
            }
            return _json({"collection": collection, "items": known.items, "freshness": fresh})

        return await admitted(request, work)

    return router


async def _read_files(request: Request) -> list[tuple[str, bytes]]:
    from starlette.datastructures import UploadFile

    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInputError(
            "upload: send multipart/form-data with one or more `file` fields "
            "(curl -F file=@manual.pdf ...)"
        )
    form = await request.form(max_files=100)
    files = []
    try:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((value.filename or "", await value.read()))
    finally:
        await form.close()
    if not files:
        raise InvalidInputError("upload: no files in the form; send them as `file` fields")
    return files
