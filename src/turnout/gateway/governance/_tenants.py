"""Tenants, their users and API keys.

A key is `tk-<id>-<secret>`: the id finds the row, the secret is checked against its
SHA-256 (the secret is 32 random bytes, so a fast hash is enough; it is never stored).
Lookups are cached for a few seconds so authentication costs no database round trip;
a revocation made through this process takes effect at once, on other replicas within
the cache's lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from turnout.core import AuthenticationError, InvalidInputError, NotFoundError

from ._database import Database
from ._policy import Policy
from ._schema import api_keys, tenants, users

ANONYMOUS = "anonymous"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_USER_ID = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_KEY = re.compile(r"^tk-([a-z0-9]{12})-([A-Za-z0-9_-]{43})$")
CACHE_S = 2.0


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    policy: Policy
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "policy": self.policy.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant_id: str
    user_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant_id,
            "user": self.user_id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class Caller:
    """Who is asking: the tenant (with its policy), the user and the key they used."""

    tenant: Tenant
    user: str | None
    key_id: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.match(tenant_id):
        raise InvalidInputError(
            f"tenant id {tenant_id!r}: use 1 to 64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return tenant_id


def check_user_id(user_id: str) -> str:
    if not _USER_ID.match(user_id):
        raise InvalidInputError(
            f"user id {user_id[:40]!r}: use 1 to 128 letters, digits or . _ @ : + -"
        )
    return user_id


def parse_policy(data: dict[str, Any], where: str = "policy") -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or where}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"{where}: {problems}") from exc


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored one is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _tenant(row: Any) -> Tenant:
    return Tenant(row.id, row.name, Policy.model_validate_json(row.policy), _utc(row.created_at))


def _key(row: Any) -> KeyInfo:
    revoked = _utc(row.revoked_at) if row.revoked_at is not None else None
    return KeyInfo(row.id, row.tenant_id, row.user_id, row.name, _utc(row.created_at), revoked)


class TenantDirectory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._keys: dict[str, tuple[float, Any]] = {}
        self._tenants: dict[str, tuple[float, Tenant | None]] = {}

    # -- tenants ---------------------------------------------------------------------
    def create_tenant(self, tenant_id: str, name: str | None, policy: Policy) -> Tenant:
        check_tenant_id(tenant_id)
        now = _now()
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    insert(tenants).values(
                        id=tenant_id,
                        name=name or tenant_id,
                        policy=policy.model_dump_json(),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise InvalidInputError(
                f"tenant {tenant_id!r} already exists; change it with `turnout tenants set`"
            ) from exc
        return Tenant(tenant_id, name or tenant_id, policy, now)

    def tenant(self, tenant_id: str) -> Tenant:
        with self.db.engine.connect() as conn:
            row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None:
            raise NotFoundError(
                f"no tenant {tenant_id!r}; `turnout tenants list` shows the tenants"
            )
        return _tenant(row)

    def list_tenants(self) -> list[Tenant]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(tenants).order_by(tenants.c.id)).all()
        return [_tenant(r) for r in rows]

    def set_policy(self, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        current = self.tenant(tenant_id)
        merged = current.policy.model_dump(mode="json")
        for key, value in changes.items():
            if key not in Policy.model_fields:
                raise InvalidInputError(
                    f"unknown policy key {key!r}; known: {', '.join(Policy.model_fields)}"
                )
            merged[key] = value
        policy = parse_policy(merged)
        with self.db.engine.begin() as conn:
            conn.execute(
                update(tenants)
                .where(tenants.c.id == tenant_id)
                .values(policy=policy.model_dump_json(), updated_at=_now())
            )
        self._tenants.pop(tenant_id, None)
        return Tenant(current.id, current.name, policy, current.created_at)

    def cached_tenant(self, tenant_id: str) -> Tenant | None:
        hit = self._tenants.get(tenant_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            found: Tenant | None = self.tenant(tenant_id)
        except NotFoundError:
            found = None
        self._tenants[tenant_id] = (time.monotonic() + CACHE_S, found)
        return found

    # -- users -----------------------------------------------------------------------
    def add_user(self, tenant_id: str, user_id: str) -> None:
        self.tenant(tenant_id)
        check_user_id(user_id)
        with self.db.engine.begin() as conn:
            exists = conn.execute(
                select(users.c.id).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
            ).first()
            if exists is None:
                conn.execute(
                    insert(users).values(tenant_id=tenant_id, id=user_id, created_at=_now())
                )

    def list_users(self, tenant_id: str) -> list[str]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(users.c.id).where(users.c.tenant_id == tenant_id).order_by(users.c.id)
            ).all()
        return [r.id for r in rows]

    # -- keys ------------------------------------------------------------------------
    def create_key(
        self, tenant_id: str, name: str = "", user_id: str | None = None
    ) -> tuple[str, KeyInfo]:
        """A new key for the tenant: (the key itself, shown once; its record)."""
        self.tenant(tenant_id)
        if user_id is not None:
            self.add_user(tenant_id, user_id)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = _now()
        with self.db.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    name=name or f"key {key_id}",
                    secret_hash=_hash(secret),
                    created_at=now,
                    revoked_at=None,
                )
            )
        return f"tk-{key_id}-{secret}", KeyInfo(key_id, tenant_id, user_id, name, now, None)

    def revoke_key(self, key_id: str) -> KeyInfo:
        with self.db.engine.begin() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFoundError(f"no key {key_id!r}; `turnout keys list` shows the keys")
            if row.revoked_at is None:
                conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=_now())
                )
        self._keys.pop(key_id, None)
        with self.db.engine.connect() as conn:
            return _key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())

    def list_keys(self, tenant_id: str | None = None) -> list[KeyInfo]:
        query = select(api_keys).order_by(api_keys.c.tenant_id, api_keys.c.created_at)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        with self.db.engine.connect() as conn:
            return [_key(r) for r in conn.execute(query).all()]

    # -- authentication --------------------------------------------------------------
    def authenticate(self, presented: str | None, user_hint: str | None = None) -> Caller:
        """The caller behind an `Authorization: Bearer` value; AuthenticationError if none.

        The user is the key's own user when the key is bound to one, else `user_hint`
        (the request's `user` field), which is attached to the tenant on first sight."""
        if not presented:
            raise AuthenticationError(
                "no API key: send `Authorization: Bearer tk-...` (create one with "
                "`turnout keys create --tenant T`)"
            )
        match = _KEY.match(presented)
        if match is None:
            raise AuthenticationError("invalid API key: not a turnout key (tk-...)")
        key_id, secret = match.groups()
        hit = self._keys.get(key_id)
        if hit is None or hit[0] < time.monotonic():
            with self.db.engine.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
            hit = (time.monotonic() + CACHE_S, row)
            self._keys[key_id] = hit
        row = hit[1]
        # Compare even when the id is unknown, so timing does not say which ids exist.
        expected = row.secret_hash if row is not None else "0" * 64
        if not hmac.compare_digest(expected, _hash(secret)) or row is None:
            raise AuthenticationError("invalid API key: unknown key")
        if row.revoked_at is not None:
            raise AuthenticationError(f"invalid API key: key {key_id} was revoked")
        tenant = self.cached_tenant(row.tenant_id)
        if tenant is None:
            raise AuthenticationError(f"invalid API key: its tenant {row.tenant_id} is gone")
        user = row.user_id
        if user is None and user_hint:
            user = check_user_id(user_hint)
        return Caller(tenant, user, key_id)

    def anonymous(self, user_hint: str | None) -> Caller:
        tenant = self.cached_tenant(ANONYMOUS)
        if tenant is None:
            try:
                tenant = self.create_tenant(ANONYMOUS, "keyless requests", Policy())
            except InvalidInputError:
                tenant = self.tenant(ANONYMOUS)  # another replica created it first
            self._tenants[ANONYMOUS] = (time.monotonic() + CACHE_S, tenant)
        user = check_user_id(user_hint) if user_hint else None
        return Caller(tenant, user, None)


def policy_json(policy: Policy) -> bytes:
    return orjson.dumps(policy.model_dump(mode="json"))
