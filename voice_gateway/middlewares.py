"""The one place where errors become the wire shape {"error": {"code", "message", "requestId"}}."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from voice_gateway.errors import (
    ApiError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

log = structlog.get_logger("voice_gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"


def error_response(exc: ApiError, request_id: str) -> web.Response:
    body = {"error": {"code": exc.code, "message": exc.message, "requestId": request_id}}
    return web.json_response(body, status=exc.status, headers=exc.headers)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("the request body is larger than this endpoint accepts")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such endpoint")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(f"method {exc.method} is not allowed here")
    err = ApiError(exc.reason)
    err.status, err.code = exc.status, f"http_{exc.status}"
    return err


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    ok = 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable()
    request_id = incoming if ok else secrets.token_hex(8)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(_from_http_exception(exc), request_id)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        response = error_response(ApiError("internal error"), request_id)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
