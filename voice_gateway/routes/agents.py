"""GET /v1/agents: the agents a key may start sessions with, as a picker shows them."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.operations import ApiRoutes, Auth, Operation
from voice_gateway.schemas import CountMeta, _Out
from voice_gateway.state import CATALOGUE

routes = ApiRoutes()


class AgentListingView(_Out):
    id: str
    name: str
    description: str
    language: str


class AgentList(_Out):
    data: list[AgentListingView]
    meta: CountMeta


LIST = Operation(
    method="GET",
    path="/v1/agents",
    summary="The agents this key may start sessions with (a publishable key: its own)",
    tag="agents",
    # Any key may look; nothing here is secret, so a same-origin page's GET (which carries no
    # Origin) is answered too, and a cross-origin one meets the key's origins.
    auth=Auth.ANY_KEY,
    origin_required=False,
    responses={200: AgentList},
)


@routes.operation(LIST)
async def list_agents(request: web.Request) -> web.Response:
    principal = await LIST.authenticate(request)
    catalogue = request.app[CATALOGUE]
    ids = [i for i in catalogue.ids() if not principal.publishable or i in principal.agent_ids]
    data = [
        AgentListingView(id=a.id, name=a.name, description=a.description, language=a.language)
        for a in map(catalogue.listing, ids)
    ]
    return LIST.reply(AgentList(data=data, meta=CountMeta(count=len(data))))
