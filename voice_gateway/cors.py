"""CORS for the endpoints a web page may call with a publishable key, and for no other.

A preflight carries no key, so it is answered when some live publishable key allows the origin, and
refused (403 origin_not_allowed, without CORS headers) otherwise; the real request then meets the
key's own list (requests.authenticate). The gateway never answers `*`: always the one origin.
The headers are decided before the handler runs and set as the answer's headers go out
(`apply_cors_headers`), so a streamed answer (server-sent events) carries them too.
"""

from __future__ import annotations

from aiohttp import web

from voice_gateway.errors import OriginNotAllowed, StoreUnavailable
from voice_gateway.middlewares import Handler
from voice_gateway.state import KEYS

BROWSER_PATHS = frozenset(
    {
        "/v1/sessions/start",
        "/v1/sessions/end",
        "/v1/livekit/token",
        "/v1/agents",
        "/v1/chat/sessions",
    }
)
# A chat session's messages, history and end: /v1/chat/sessions/{sessionId}/...
BROWSER_PREFIXES = ("/v1/chat/sessions/",)
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Content-Type, X-Api-Key, Authorization, X-Request-Id, Idempotency-Key"
    ),
    "Access-Control-Max-Age": "600",
}
EXPOSE_HEADERS = "Retry-After, X-Request-Id, Idempotent-Replayed"
CORS_HEADERS = web.RequestKey("cors_headers", dict[str, str])


def browser_path(path: str) -> bool:
    return path in BROWSER_PATHS or path.startswith(BROWSER_PREFIXES)


async def _origin_known(request: web.Request, origin: str) -> bool:
    try:
        return await request.app[KEYS].origin_known(origin)
    except StoreUnavailable:
        return False


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if not origin:
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not browser_path(request.path) or not await _origin_known(request, origin):
            raise OriginNotAllowed("this origin may not call this endpoint from a browser")
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **PREFLIGHT_HEADERS}
        return web.Response(status=204, headers=headers)
    if browser_path(request.path):
        request[CORS_HEADERS] = await _cors_headers(request, origin)
    return await handler(request)


async def apply_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers cors_middleware decided, on every answer (errors too)."""
    headers = request.get(CORS_HEADERS)
    if headers:
        response.headers.update(headers)


async def _cors_headers(request: web.Request, origin: str) -> dict[str, str]:
    if not await _origin_known(request, origin):
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }
