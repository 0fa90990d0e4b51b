"""Reading a request: who is calling and what JSON they sent, checked in a fixed order."""

from __future__ import annotations

import json
from typing import Any, TypeVar, get_origin

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from voice_gateway.errors import (
    ApiError,
    InvalidJson,
    InvalidRequest,
    MissingApiKey,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from voice_gateway.metrics import AUTH_FAILURES
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
    request always carries one, which is then checked. The key id (never the key) joins the
    log context."""
    try:
        value = presented_key(request)
        if not value:
            raise MissingApiKey("send your API key in the x-api-key header")
        principal = await request.app[KEYS].authenticate(value)
        structlog.contextvars.bind_contextvars(key_id=principal.key_id)
        origin = request.headers.get("Origin")
        principal.require_not_in_browser(origin)
        if scope is not None:
            principal.require(scope)
        if origin is not None or origin_required:
            principal.require_origin(origin)
    except ApiError as exc:
        if exc.status in (401, 403):
            AUTH_FAILURES.labels(reason=exc.code).inc()
        raise
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
        # Strict JSON: what the documented JSON Schema allows (no "1" for 1, no 0 for false).
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None


def _list_params(model: type[BaseModel]) -> frozenset[str]:
    fields = model.model_fields.items()
    return frozenset(f.alias or name for name, f in fields if get_origin(f.annotation) is list)


def read_query(request: web.Request, model: type[M]) -> M:
    """A list field takes repeated parameters and comma-separated values alike; any other field
    takes the last value given."""
    lists = _list_params(model)
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = [s for v in values for s in v.split(",") if s] if key in lists else values[-1]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
