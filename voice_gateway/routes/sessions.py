"""POST /v1/sessions/start and /v1/sessions/end: the contract clients code against."""

from __future__ import annotations

import json

from aiohttp import web

from voice_gateway.errors import (
    AgentNotFound,
    LiveKitUnavailable,
    PayloadTooLarge,
    RateLimited,
    SessionNotFound,
)
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.schemas import (
    EndSessionRequest,
    SessionView,
    StartSessionRequest,
    StartSessionResponse,
)
from voice_gateway.services.sessions import MAX_AGENT_CONFIG_BYTES
from voice_gateway.state import SESSIONS

routes = ApiRoutes()

START = Operation(
    method="POST",
    path="/v1/sessions/start",
    summary="Start a session: create the room, dispatch the agent, mint the caller's token",
    tag="sessions",
    scope="sessions:write",
    body=StartSessionRequest,
    responses={201: StartSessionResponse},
    errors=(AgentNotFound, RateLimited, LiveKitUnavailable),
)
END = Operation(
    method="POST",
    path="/v1/sessions/end",
    summary="End a session and delete its room (idempotent)",
    tag="sessions",
    scope="sessions:write",
    body=EndSessionRequest,
    responses={200: SessionView},
    errors=(SessionNotFound, LiveKitUnavailable),
)


@routes.operation(START)
async def start_session(request: web.Request) -> web.Response:
    principal = await START.authenticate(request)
    await request.app[SESSIONS].check_rate(principal)
    body = await START.read_body(request)
    if body.agent_config is not None:
        size = len(json.dumps(body.agent_config).encode())
        if size > MAX_AGENT_CONFIG_BYTES:
            raise PayloadTooLarge(f"agentConfig is over {MAX_AGENT_CONFIG_BYTES} bytes")
    sessions = request.app[SESSIONS]
    config = sessions.resolve_agent(body.agent_id, body.agent_config, principal=principal)
    started = await sessions.start(
        principal=principal,
        agent_id=body.agent_id,
        user_identity=body.user_identity,
        config=config,
    )
    response = StartSessionResponse(
        session_id=started.record.id,
        room_name=started.record.room_name,
        user_token=started.user_token,
        livekit_url=started.livekit_url,
        agent_id=started.record.agent_id,
        user_identity=started.record.user_identity,
        expires_at=started.expires_at,
    )
    return START.reply(response)


@routes.operation(END)
async def end_session(request: web.Request) -> web.Response:
    principal = await END.authenticate(request)
    body = await END.read_body(request)
    record = await request.app[SESSIONS].end(body.room_name, actor=principal)
    return END.reply(SessionView.of(record))
