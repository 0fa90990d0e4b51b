"""GET /v1/agents: the agents a key may start sessions with, as a picker shows them."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.requests import authenticate
from voice_gateway.state import CATALOGUE

routes = web.RouteTableDef()


@routes.get("/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    # Any key may look; a publishable key sees only its own agents. Nothing here is secret, so a
    # same-origin page's GET (which carries no Origin) is answered too.
    principal = await authenticate(request, None, origin_required=False)
    catalogue = request.app[CATALOGUE]
    ids = [i for i in catalogue.ids() if not principal.publishable or i in principal.agent_ids]
    data = [
        {"id": a.id, "name": a.name, "description": a.description, "language": a.language}
        for a in map(catalogue.listing, ids)
    ]
    return web.json_response({"data": data, "meta": {"count": len(data)}})
