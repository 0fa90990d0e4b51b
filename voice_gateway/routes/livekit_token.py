"""POST /v1/livekit/token: LiveKit's standard token endpoint, so LiveKit's own clients and starter
apps (an endpoint `TokenSource`) start sessions here without glue. It is /v1/sessions/start in
another dress: the same key rules, limits and CORS, and the same SessionService.start. Its wire
shape is LiveKit's (snake_case), not our camelCase, and the document says so."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.errors import AgentNotFound, LiveKitUnavailable, NoAgentAvailable, RateLimited
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.state import SESSIONS
from voice_gateway.token_request import TokenRequest, TokenResponse, read_token_request

routes = ApiRoutes()

TOKEN = Operation(
    method="POST",
    path="/v1/livekit/token",
    summary="LiveKit's standard token endpoint: start a session, answer a token for its room",
    tag="sessions",
    scope="sessions:write",
    body=TokenRequest,
    responses={201: TokenResponse},
    errors=(AgentNotFound, RateLimited, LiveKitUnavailable, NoAgentAvailable),
)


@routes.operation(TOKEN)
async def livekit_token(request: web.Request) -> web.Response:
    principal = await TOKEN.authenticate(request)
    sessions = request.app[SESSIONS]
    await sessions.check_rate(principal)
    wanted = read_token_request(await TOKEN.read_body(request))
    started = await sessions.start_requested(
        principal=principal,
        agent_id=wanted.agent_id,
        user_identity=wanted.user_identity,
        overrides=wanted.agent_config,
        participant=wanted.participant,
    )
    return TOKEN.reply(
        TokenResponse(
            server_url=started.livekit_url,
            participant_token=started.user_token,
            room_name=started.record.room_name,
            participant_name=wanted.participant.name or started.record.user_identity,
        )
    )
