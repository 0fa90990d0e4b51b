"""The browser client (web/, built by scripts/setup.sh) at `/`, and the config its page reads.

Every path that is not the API and not a built file answers the page's index.html, so the app's
own routes (`/`, later `/ops`) load from a bookmark. The config document names the publishable key
the page uses; a deployment that hosts the page elsewhere serves its own /config.json beside it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from voice_gateway.errors import NotFound, WebClientNotBuilt
from voice_gateway.state import SETTINGS, WEB_PAGE

routes = web.RouteTableDef()

NO_CACHE = {"Cache-Control": "no-cache"}
# Vite names built assets by their content hash: a name never changes meaning.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


@routes.get("/config.json")
async def page_config(request: web.Request) -> web.Response:
    page = request.app[WEB_PAGE]
    body = {
        "apiBaseUrl": "",
        "apiKey": page.api_key,
        "defaultAgentId": page.default_agent,
        "tokenEndpoint": "/v1/livekit/token",
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# The API's paths never match, so an unknown API path (any method) stays a JSON 404.
@routes.get("/{path:(?!v1/|internal/).*}")
async def page_file(request: web.Request) -> web.FileResponse:
    path = request.match_info["path"]
    root = request.app[SETTINGS].web_dir.resolve()
    index = root / "index.html"
    if not index.is_file():
        raise WebClientNotBuilt(
            "the web client is not built: run `make setup` (npm ci and the Vite build in web/)"
        )
    if path:
        candidate = (root / path).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            cache = IMMUTABLE if candidate.parent.name == "assets" else NO_CACHE
            return web.FileResponse(candidate, headers={**PAGE_HEADERS, **cache})
        if "." in Path(path).name:
            raise NotFound("no such file")
    return web.FileResponse(index, headers={**PAGE_HEADERS, **NO_CACHE})
