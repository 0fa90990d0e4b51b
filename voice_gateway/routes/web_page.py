"""The browser client (web/, built by scripts/setup.sh) at `/`, and the config its page reads.

Every path that is not the API and not a built file answers the page's index.html, so the app's
own routes (`/`, later `/ops`) load from a bookmark. The config document names the publishable key
the page uses; a deployment that hosts the page elsewhere serves its own /config.json beside it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from voice_gateway.errors import NotFound, WebClientNotBuilt
from voice_gateway.operations import ApiRoutes, Auth, FileRoute, Operation
from voice_gateway.schemas import _Out
from voice_gateway.state import SETTINGS, WEB_PAGE

routes = ApiRoutes()

NO_CACHE = {"Cache-Control": "no-cache"}
# Vite names built assets by their content hash: a name never changes meaning.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class PageConfig(_Out):
    """What the page reads at start (a deployment hosting the page elsewhere serves its own)."""

    api_base_url: str = Field(description="The gateway's address; empty: the page's own origin")
    api_key: str | None = Field(description="The page's publishable key; null: none configured")
    default_agent_id: str | None = Field(description="The agent the picker shows first")
    token_endpoint: str = Field(description="LiveKit's standard token endpoint on the gateway")


CONFIG = Operation(
    method="GET",
    path="/config.json",
    summary="The web client's settings: the gateway's address and the page's publishable key",
    tag="web",
    auth=Auth.NONE,
    responses={200: PageConfig},
    headers={200: {"Cache-Control": "no-store"}},
)
# Not described in the OpenAPI document: what it answers is the built app (HTML, scripts,
# styles), and its one parameter spans slashes (/assets/x.js, /ops), which an OpenAPI path
# parameter cannot.
FILES = FileRoute(
    method="GET",
    # The API's paths never match, so an unknown API path (any method) stays a JSON 404.
    route="/{path:(?!v1/|internal/).*}",
    reason="the web client's built files and its pages' paths (index.html), not the API",
)


@routes.operation(CONFIG)
async def page_config(request: web.Request) -> web.Response:
    page = request.app[WEB_PAGE]
    return CONFIG.reply(
        PageConfig(
            api_base_url="",
            api_key=page.api_key,
            default_agent_id=page.default_agent,
            token_endpoint="/v1/livekit/token",
        )
    )


@routes.files(FILES)
async def page_file(request: web.Request) -> web.StreamResponse:
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
