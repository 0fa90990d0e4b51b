"""Request-level concerns in two middlewares: `request_middleware` (outermost: the request id, one
log line and the HTTP metrics per request) and `error_middleware`, the one place where errors
become the wire shape {"error": {"code", "message", "requestId"}}."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web
from pydantic import BaseModel

from voice_gateway.errors import (
    ApiError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from voice_gateway.metrics import HTTP_DURATION, HTTP_REQUESTS
from voice_gateway.openai_schemas import openai_error
from voice_gateway.operations import ErrorShape, error_shape
from voice_gateway.schemas import ErrorDetail, ErrorResponse

log = structlog.get_logger("voice_gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
# A method outside this set is counted as "other", so a client cannot mint label values.
KNOWN_METHODS = frozenset(hdrs.METH_ALL)
UNMATCHED_ROUTE = "unmatched"
# What a client that went away before its answer is logged with (nginx's convention).
CLIENT_CLOSED = 499


def error_body(exc: ApiError, request_id: str) -> ErrorResponse:
    return ErrorResponse(
        error=ErrorDetail(code=exc.code, message=exc.message, request_id=request_id)
    )


def error_response(
    exc: ApiError, request_id: str, shape: ErrorShape = ErrorShape.API
) -> web.Response:
    """The one place an error becomes an answer: in our shape, or in OpenAI's on the
    OpenAI-compatible routes (the request id is then in the X-Request-Id header only)."""
    body: BaseModel = (
        openai_error(exc) if shape is ErrorShape.OPENAI else error_body(exc, request_id)
    )
    return web.json_response(
        body.model_dump(by_alias=True, mode="json"), status=exc.status, headers=exc.headers
    )


def _error_shape(request: web.Request) -> ErrorShape:
    resource = request.match_info.route.resource
    return error_shape(resource.canonical if resource is not None else request.path)


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a streamed answer's headers leave before its handler returns, so
    the request id is set as they go out, not only by request_middleware afterwards."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("the request body is larger than this endpoint accepts")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such endpoint")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return MethodNotAllowed(f"method {exc.method} is not allowed here", headers=allow)
    err = ApiError(exc.reason)
    err.status, err.code = exc.status, f"http_{exc.status}"
    return err


def _request_id(request: web.Request) -> str:
    """The caller's id when it is a sane one (so their logs and ours join), else a new one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    ok = 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable()
    return incoming if ok else secrets.token_hex(8)


async def route_pattern(request: web.Request) -> str:
    """`/v1/sessions/{room}`, never the room: the path as the router declared it. A method the
    route does not take (a CORS preflight's OPTIONS among them) still names the route its path
    matched; only a path no route matches is `unmatched`."""
    resource = request.match_info.route.resource
    if resource is not None:
        return resource.canonical
    if isinstance(request.match_info.http_exception, web.HTTPMethodNotAllowed):
        for candidate in request.app.router.resources():
            _match, allowed = await candidate.resolve(request)
            if allowed:
                return candidate.canonical
    return UNMATCHED_ROUTE


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:  # a redirect, which error_middleware lets through
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        elapsed = time.perf_counter() - started
        method = request.method if request.method in KNOWN_METHODS else "other"
        route = await route_pattern(request)
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_DURATION.labels(method, route).observe(elapsed)
        # key_id joins the log context when a key authenticates (requests.authenticate).
        log.info(
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            request_id=request_id,
            key_id=structlog.contextvars.get_contextvars().get("key_id"),
        )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.get(REQUEST_ID) or _request_id(request)
    shape = _error_shape(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc, request_id, shape)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc), request_id, shape)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return error_response(ApiError("internal error"), request_id, shape)
