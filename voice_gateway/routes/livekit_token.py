"""POST /v1/livekit/token: LiveKit's standard token endpoint, so LiveKit's own clients and starter
apps (an endpoint `TokenSource`) start sessions here without glue. It is /v1/sessions/start in
another dress: the same key rules, limits and CORS, and the same SessionService.start."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.requests import authenticate, read_body
from voice_gateway.state import SESSIONS
from voice_gateway.token_request import TokenRequest, read_token_request

routes = web.RouteTableDef()


@routes.post("/v1/livekit/token")
async def livekit_token(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    sessions = request.app[SESSIONS]
    await sessions.check_rate(principal)
    wanted = read_token_request(await read_body(request, TokenRequest))
    started = await sessions.start_requested(
        principal=principal,
        agent_id=wanted.agent_id,
        user_identity=wanted.user_identity,
        overrides=wanted.agent_config,
        participant=wanted.participant,
    )
    body = {
        "server_url": started.livekit_url,
        "participant_token": started.user_token,
        "room_name": started.record.room_name,
        "participant_name": wanted.participant.name or started.record.user_identity,
    }
    return web.json_response(body, status=web.HTTPCreated.status_code)
