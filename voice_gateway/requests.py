"""Reading a request: who is calling and what JSON they sent, checked in a fixed order."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from voice_gateway.errors import (
    InvalidJson,
    InvalidRequest,
    MissingApiKey,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from voice_gateway.services.keys import Principal
from voice_gateway.services.sessions import describe_validation_error
from voice_gateway.state import KEYS, SETTINGS

M = TypeVar("M", bound=BaseModel)


def presented_key(request: web.Request) -> str | None:
    value = request.headers.get("x-api-key")
    if value:
        return value.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(
    request: web.Request, scope: str | None, *, origin_required: bool = True
) -> Principal:
    """The caller's key, checked in this order: valid, not a secret key in a browser, the scope
    (None: any key), then a publishable key's origin. `origin_required=False` is for reads a page
    makes of its own origin: browsers send no Origin on a same-origin GET, and a cross-origin
    request always carries one, which is then checked."""
    value = presented_key(request)
    if not value:
        raise MissingApiKey("send your API key in the x-api-key header")
    principal = await request.app[KEYS].authenticate(value)
    origin = request.headers.get("Origin")
    principal.require_not_in_browser(origin)
    if scope is not None:
        principal.require(scope)
    if origin is not None or origin_required:
        principal.require_origin(origin)
    return principal


async def read_body(request: web.Request, model: type[M]) -> M:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request body is over {limit} bytes")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidJson("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
