"""turnout errors as HTTP: one table from error type to status, OpenAI's error body.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

The table is walked along the exception's MRO, so the most specific entry wins.
"""

from __future__ import annotations

import logging
import math

import orjson
from starlette.requests import Request
from starlette.responses import Response

from turnout.core import (
    AuthenticationError,
    BudgetExceededError,
    ImageTokenCapError,
    InvalidImageError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProviderError,
    QuotaExceededError,
    RateLimitExceededError,
    TurnoutError,
    UnsupportedMediaError,
)

from ._cascade import AllAttemptsFailedError
from ._intake import MalformedBodyError, RequestValidationError
from ._resilience import DeadlineExceededError
from ._router import RouteNotFoundError
from .governance import LedgerUnavailableError

log = logging.getLogger("turnout.gateway")

# error type -> (HTTP status, OpenAI error `type`, `code`)
ERROR_TABLE: dict[type[BaseException], tuple[int, str, str]] = {
    MalformedBodyError: (400, "invalid_request_error", "invalid_json"),
    RequestValidationError: (422, "invalid_request_error", "invalid_value"),
    ImageTokenCapError: (413, "invalid_request_error", "image_token_cap_exceeded"),
    PayloadTooLargeError: (413, "invalid_request_error", "payload_too_large"),
    AuthenticationError: (401, "invalid_request_error", "invalid_api_key"),
    PermissionDeniedError: (403, "invalid_request_error", "permission_denied"),
    RateLimitExceededError: (429, "requests", "rate_limit_exceeded"),
    BudgetExceededError: (429, "insufficient_quota", "budget_exceeded"),
    QuotaExceededError: (429, "requests", "quota_exceeded"),
    LedgerUnavailableError: (503, "server_error", "ledger_unavailable"),
    UnsupportedMediaError: (415, "invalid_request_error", "unsupported_media_type"),
    InvalidImageError: (400, "invalid_request_error", "invalid_image"),
    InvalidInputError: (400, "invalid_request_error", "invalid_request"),
    RouteNotFoundError: (404, "invalid_request_error", "model_not_found"),
    NotFoundError: (404, "invalid_request_error", "not_found"),
    DeadlineExceededError: (504, "upstream_error", "deadline_exceeded"),
    AllAttemptsFailedError: (502, "upstream_error", "upstream_failed"),
    ProviderError: (502, "upstream_error", "upstream_failed"),
    TurnoutError: (500, "server_error", "internal_error"),
}


def classify(exc: BaseException) -> tuple[int, str, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, kind, code = ERROR_TABLE[cls]
            if isinstance(exc, AllAttemptsFailedError) and exc.status == 504:
                return 504, kind, "upstream_timeout"
            return status, kind, code
    return 500, "server_error", "internal_error"


def error_body(exc: BaseException, request_id: str) -> tuple[int, bytes]:
    status, kind, code = classify(exc)
    if status >= 500 and not isinstance(exc, TurnoutError):
        message = f"internal error; quote request id {request_id} when reporting it"
    else:
        message = str(exc)
    param = getattr(exc, "param", None)
    return status, orjson.dumps(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}
    )


def error_response(
    exc: BaseException, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    status, body = error_body(exc, request_id)
    if status >= 500 and not isinstance(exc, TurnoutError):
        log.error("request %s failed", request_id, exc_info=exc)
    extra = {"x-request-id": request_id, **(headers or {})}
    if isinstance(exc, QuotaExceededError):
        extra.update(exc.headers)
        if exc.retry_after is not None:
            extra["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, AuthenticationError):
        extra["www-authenticate"] = "Bearer"
    return Response(body, status_code=status, media_type="application/json", headers=extra)


async def handle_any(request: Request, exc: Exception) -> Response:
    """Starlette's last resort: errors raised outside the chat handler's own try."""
    request_id = getattr(request.state, "request_id", "") or "unknown"
    return error_response(exc, request_id)


async def handle_http(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    body = {
        "error": {
            "message": f"{exc.detail}: {request.method} {request.url.path}",
            "type": kind,
            "param": None,
            "code": str(exc.status_code),
        }
    }
    return Response(orjson.dumps(body), status_code=exc.status_code, media_type="application/json")
