"""`POST /v1/feedback`: a user's thumbs up or down on one answer, kept with the request's
modality so satisfaction can be broken down by it (text, image, audio, document).

    {"request_id": "...", "rating": "up" | "down", "comment": "...", "labels": ["wrong"]}

The request must belong to the caller's tenant; an unknown id and another tenant's id get
the same 404, so ids cannot be probed across tenants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select
from starlette.requests import Request
from starlette.responses import Response

from turnout.core import NotFoundError

from ._intake import parse_body
from .governance import Governor
from .governance._schema import feedback, ledger, requests
from .telemetry import Telemetry

MAX_BODY = 16 * 1024


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down", 1, -1]
    comment: str | None = Field(default=None, max_length=2000)
    labels: list[str] = Field(default_factory=list, max_length=20)

    @property
    def score(self) -> int:
        return 1 if self.rating in ("up", 1) else -1


def feedback_routes(governor: Governor, telemetry: Telemetry) -> APIRouter:
    router = APIRouter()
    db = governor.db

    def store(tenant: str, user: str | None, given: Feedback) -> str:
        with db.engine.begin() as conn:
            known = conn.execute(
                select(requests.c.modality).where(
                    requests.c.request_id == given.request_id, requests.c.tenant_id == tenant
                )
            ).first()
            if known is not None:
                modality = str(known.modality)
            else:
                # The request's own record may still be in the batch; its ledger rows are not.
                rows = conn.execute(
                    select(func.max(ledger.c.image_count), func.count()).where(
                        ledger.c.request_id == given.request_id, ledger.c.tenant_id == tenant
                    )
                ).one()
                if not rows[1]:
                    raise NotFoundError(
                        f"no request {given.request_id!r} for tenant {tenant} "
                        "(feedback names the x-request-id of one of your tenant's answers)"
                    )
                modality = "image" if rows[0] else "text"
            conn.execute(
                insert(feedback).values(
                    request_id=given.request_id,
                    tenant_id=tenant,
                    user_id=user,
                    rating=given.score,
                    comment=given.comment,
                    labels=orjson.dumps(given.labels).decode(),
                    modality=modality,
                    created_at=datetime.now(UTC),
                )
            )
        return modality

    @router.post("/v1/feedback")
    async def give_feedback(request: Request) -> Response:
        caller = governor.identify(request.headers.get("authorization"), None)
        given = parse_body(Feedback, await request.body(), "feedback", MAX_BODY)
        if telemetry.recorder is not None:
            await telemetry.recorder.flush()  # this replica's pending records first
        modality = await db.run(store, caller.tenant.id, caller.user, given)
        if telemetry.metrics is not None:
            telemetry.metrics.feedback.labels(modality, "up" if given.score > 0 else "down").inc()
        body: dict[str, Any] = {
            "request_id": given.request_id,
            "recorded": True,
            "modality": modality,
        }
        return Response(orjson.dumps(body), status_code=201, media_type="application/json")

    return router
