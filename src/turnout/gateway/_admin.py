"""The admin API (admin key) and a tenant's own spend (tenant key), as JSON.

POST   /admin/tenants                 {"id", "name"?, "policy"?}
GET    /admin/tenants                 every tenant
GET    /admin/tenants/{id}            one tenant, with today's and this month's spend
PATCH  /admin/tenants/{id}            {"policy": {...changes}}
POST   /admin/tenants/{id}/keys       {"name"?, "user"?} -> the key, shown once
GET    /admin/keys?tenant=            keys (never their secrets)
DELETE /admin/keys/{id}               revoke
GET    /admin/spend?tenant=&by=&since=
GET    /v1/spend?by=&since=           the calling tenant's own spend
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from turnout.core import AuthenticationError, InvalidInputError, PermissionDeniedError, Settings

from .governance import Governor, parse_policy
from .governance._reports import spend_report


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("request body must be a JSON object")
    return data


def require_admin(settings: Settings, request: Request) -> None:
    configured = settings.governance.admin_key
    if configured is None:
        raise PermissionDeniedError(
            "the admin API is off: set governance.admin_key (TURNOUT_GOVERNANCE__ADMIN_KEY)"
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthenticationError("the admin API needs `Authorization: Bearer <admin key>`")
    if not hmac.compare_digest(given.strip().encode(), configured.get_secret_value().encode()):
        raise AuthenticationError("invalid admin key")


def admin_routes(settings: Settings, governor: Governor) -> APIRouter:
    router = APIRouter()
    directory, db = governor.directory, governor.db

    def tenant_view(tenant_id: str) -> dict[str, Any]:
        tenant = directory.tenant(tenant_id)
        totals = governor.ledger.totals(tenant.id, tenant.policy)
        return {**tenant.public(), "spend": totals, "users": directory.list_users(tenant.id)}

    @router.post("/admin/tenants")
    async def create_tenant(request: Request) -> Response:
        require_admin(settings, request)
        body = await _body(request)
        policy = parse_policy(body.get("policy") or {})
        tenant = await db.run(
            directory.create_tenant, str(body.get("id", "")), body.get("name"), policy
        )
        return _json(tenant.public(), 201)

    @router.get("/admin/tenants")
    async def list_tenants(request: Request) -> Response:
        require_admin(settings, request)
        tenants = await db.run(directory.list_tenants)
        return _json({"data": [t.public() for t in tenants]})

    @router.get("/admin/tenants/{tenant_id}")
    async def show_tenant(tenant_id: str, request: Request) -> Response:
        require_admin(settings, request)
        return _json(await db.run(tenant_view, tenant_id))

    @router.patch("/admin/tenants/{tenant_id}")
    async def set_tenant(tenant_id: str, request: Request) -> Response:
        require_admin(settings, request)
        body = await _body(request)
        changes = body.get("policy")
        if not isinstance(changes, dict):
            raise InvalidInputError('body must be {"policy": {<key>: <value>, ...}}')
        tenant = await db.run(directory.set_policy, tenant_id, changes)
        return _json(tenant.public())

    @router.post("/admin/tenants/{tenant_id}/keys")
    async def create_key(tenant_id: str, request: Request) -> Response:
        require_admin(settings, request)
        body = await _body(request)
        key, info = await db.run(
            directory.create_key, tenant_id, str(body.get("name") or ""), body.get("user")
        )
        return _json({"key": key, **info.public()}, 201)

    @router.get("/admin/keys")
    async def list_keys(request: Request) -> Response:
        require_admin(settings, request)
        keys = await db.run(directory.list_keys, request.query_params.get("tenant"))
        return _json({"data": [k.public() for k in keys]})

    @router.delete("/admin/keys/{key_id}")
    async def revoke_key(key_id: str, request: Request) -> Response:
        require_admin(settings, request)
        return _json((await db.run(directory.revoke_key, key_id)).public())

    @router.get("/admin/spend")
    async def admin_spend(request: Request) -> Response:
        require_admin(settings, request)
        q = request.query_params
        report = await db.run(
            lambda: spend_report(
                db, tenant=q.get("tenant"), by=q.get("by", "day"), since=q.get("since")
            )
        )
        return _json(report)

    @router.get("/v1/spend")
    async def own_spend(request: Request) -> Response:
        caller = governor.identify(request.headers.get("authorization"), None)
        q = request.query_params
        asked = q.get("tenant")
        if asked is not None and asked != caller.tenant.id:
            raise PermissionDeniedError(
                f"a key of tenant {caller.tenant.id} cannot read tenant {asked}'s spend"
            )
        report = await db.run(
            lambda: spend_report(
                db, tenant=caller.tenant.id, by=q.get("by", "day"), since=q.get("since")
            )
        )
        return _json(report)

    return router
