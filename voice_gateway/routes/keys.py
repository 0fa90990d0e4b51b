"""The key admin API (scope keys:write, secret keys only). A key's value is in the answer to its
creation or rotation and nowhere else; rotation keeps the key's id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from voice_gateway.requests import authenticate, read_body
from voice_gateway.schemas import _In, _Out
from voice_gateway.services.keys import IssuedKey, KeyLimits, NewKey
from voice_gateway.state import KEYS
from voice_gateway.store.models import ApiKeyRecord

routes = web.RouteTableDef()

SCOPE = "keys:write"
# Answers that carry a key value must not sit in any cache.
NO_STORE = {"Cache-Control": "no-store"}


class CreateKeyRequest(_In):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["secret", "publishable"] = "secret"
    scopes: list[str] | None = Field(default=None, max_length=8)
    agent_ids: list[str] = Field(default_factory=list, max_length=64)
    allowed_origins: list[str] = Field(default_factory=list, max_length=32)
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    rate_limit_window_seconds: int | None = Field(default=None, ge=1, le=3600)
    max_concurrent_sessions: int | None = Field(default=None, ge=1, le=100_000)
    allow_browser: bool = False


class KeyView(_Out):
    id: str
    prefix: str
    name: str
    kind: str
    scopes: list[str]
    agent_ids: list[str]
    allowed_origins: list[str]
    rate_limit_per_minute: int | None
    rate_limit_window_seconds: int | None
    max_concurrent_sessions: int | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    allow_browser: bool

    @classmethod
    def of(cls, r: ApiKeyRecord) -> KeyView:
        """Reads the record's same-named fields; the hash is not one of them, so it never leaks."""
        return cls.model_validate(r, from_attributes=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


def _issued(issued: IssuedKey) -> dict[str, Any]:
    return {**KeyView.of(issued.record).dump(), "key": issued.value}


@routes.post("/v1/keys")
async def create_key(request: web.Request) -> web.Response:
    actor = await authenticate(request, SCOPE)
    body = await read_body(request, CreateKeyRequest)
    spec = NewKey(
        name=body.name,
        kind=body.kind,
        scopes=tuple(body.scopes) if body.scopes is not None else None,
        agent_ids=tuple(body.agent_ids),
        allowed_origins=tuple(body.allowed_origins),
        expires_at=body.expires_at,
        limits=KeyLimits(
            rate_limit_per_minute=body.rate_limit_per_minute,
            rate_limit_window_seconds=body.rate_limit_window_seconds,
            max_concurrent_sessions=body.max_concurrent_sessions,
        ),
        allow_browser=body.allow_browser,
    )
    issued = await request.app[KEYS].create(spec, actor=actor)
    return web.json_response(_issued(issued), status=web.HTTPCreated.status_code, headers=NO_STORE)


@routes.get("/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    records = await request.app[KEYS].list_keys()
    return web.json_response(
        {"data": [KeyView.of(r).dump() for r in records], "meta": {"count": len(records)}}
    )


@routes.get("/v1/keys/{key_id}")
async def show_key(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    record = await request.app[KEYS].get(request.match_info["key_id"])
    return web.json_response(KeyView.of(record).dump())


@routes.post("/v1/keys/{key_id}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    actor = await authenticate(request, SCOPE)
    record = await request.app[KEYS].revoke(request.match_info["key_id"], actor=actor)
    return web.json_response(KeyView.of(record).dump())


@routes.post("/v1/keys/{key_id}/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    actor = await authenticate(request, SCOPE)
    issued = await request.app[KEYS].rotate(request.match_info["key_id"], actor=actor)
    return web.json_response(_issued(issued), headers=NO_STORE)
