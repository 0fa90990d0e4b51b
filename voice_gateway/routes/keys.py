"""The key admin API (scope keys:write, secret keys only). A key's value is in the answer to its
creation or rotation and nowhere else; rotation keeps the key's id."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from voice_gateway.errors import KeyNotFound, KeyRevoked
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.schemas import CountMeta, Timestamp, _In, _Out
from voice_gateway.services.keys import IssuedKey, KeyLimits, NewKey
from voice_gateway.state import KEYS
from voice_gateway.store.models import ApiKeyRecord

routes = ApiRoutes()

SCOPE = "keys:write"
# Answers that carry a key value must not sit in any cache.
NO_STORE = {"Cache-Control": "no-store"}
KEY_ID_PARAM = {"type": "string", "minLength": 1, "maxLength": 40}


class CreateKeyRequest(_In):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["secret", "publishable"] = "secret"
    scopes: list[str] | None = Field(default=None, max_length=8)
    agent_ids: list[str] = Field(default_factory=list, max_length=64)
    allowed_origins: list[str] = Field(default_factory=list, max_length=32)
    expires_at: Timestamp | None = None
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


class IssuedKeyView(KeyView):
    key: str = Field(description="The key's value: shown in this answer and never again")

    @classmethod
    def issued(cls, issued: IssuedKey) -> IssuedKeyView:
        return cls(**KeyView.of(issued.record).model_dump(), key=issued.value)


class KeyList(_Out):
    data: list[KeyView]
    meta: CountMeta


CREATE = Operation(
    method="POST",
    path="/v1/keys",
    summary="Create a key; the answer holds its value, the only time it is shown",
    tag="keys",
    scope=SCOPE,
    body=CreateKeyRequest,
    responses={201: IssuedKeyView},
    headers={201: NO_STORE},
)
LIST = Operation(
    method="GET",
    path="/v1/keys",
    summary="Every key, without values",
    tag="keys",
    scope=SCOPE,
    responses={200: KeyList},
)
SHOW = Operation(
    method="GET",
    path="/v1/keys/{key_id}",
    summary="One key, without its value",
    tag="keys",
    scope=SCOPE,
    path_params={"key_id": KEY_ID_PARAM},
    responses={200: KeyView},
    errors=(KeyNotFound,),
)
REVOKE = Operation(
    method="POST",
    path="/v1/keys/{key_id}/revoke",
    summary="Revoke a key: it fails from the next request (idempotent)",
    tag="keys",
    scope=SCOPE,
    path_params={"key_id": KEY_ID_PARAM},
    responses={200: KeyView},
    errors=(KeyNotFound,),
)
ROTATE = Operation(
    method="POST",
    path="/v1/keys/{key_id}/rotate",
    summary="Rotate a key: a new value under the same id; the old value fails from now on",
    tag="keys",
    scope=SCOPE,
    path_params={"key_id": KEY_ID_PARAM},
    responses={200: IssuedKeyView},
    headers={200: NO_STORE},
    errors=(KeyNotFound, KeyRevoked),
)


@routes.operation(CREATE)
async def create_key(request: web.Request) -> web.Response:
    actor = await CREATE.authenticate(request)
    body = await CREATE.read_body(request)
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
    return CREATE.reply(IssuedKeyView.issued(issued))


@routes.operation(LIST)
async def list_keys(request: web.Request) -> web.Response:
    await LIST.authenticate(request)
    records = await request.app[KEYS].list_keys()
    return LIST.reply(
        KeyList(data=[KeyView.of(r) for r in records], meta=CountMeta(count=len(records)))
    )


@routes.operation(SHOW)
async def show_key(request: web.Request) -> web.Response:
    await SHOW.authenticate(request)
    record = await request.app[KEYS].get(request.match_info["key_id"])
    return SHOW.reply(KeyView.of(record))


@routes.operation(REVOKE)
async def revoke_key(request: web.Request) -> web.Response:
    actor = await REVOKE.authenticate(request)
    record = await request.app[KEYS].revoke(request.match_info["key_id"], actor=actor)
    return REVOKE.reply(KeyView.of(record))


@routes.operation(ROTATE)
async def rotate_key(request: web.Request) -> web.Response:
    actor = await ROTATE.authenticate(request)
    issued = await request.app[KEYS].rotate(request.match_info["key_id"], actor=actor)
    return ROTATE.reply(IssuedKeyView.issued(issued))
