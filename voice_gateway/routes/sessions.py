"""POST /v1/sessions/start and /v1/sessions/end: the contract clients code against."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.errors import (
    AgentNotFound,
    AgentTimeout,
    IdempotencyConflict,
    IdempotencyInProgress,
    LiveKitUnavailable,
    NoAgentAvailable,
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
from voice_gateway.services import idempotency
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
    errors=(
        AgentNotFound,
        RateLimited,
        IdempotencyConflict,
        IdempotencyInProgress,
        LiveKitUnavailable,
        NoAgentAvailable,
        AgentTimeout,
    ),
    header_params={idempotency.HEADER: idempotency.HEADER_SCHEMA},
    optional_headers={
        201: {idempotency.REPLAYED_HEADER: "`true` when an earlier request with this key made it"}
    },
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
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await START.read_body(request)
    started = await request.app[SESSIONS].start_requested(
        principal=principal,
        agent_id=body.agent_id,
        user_identity=body.user_identity,
        overrides=body.agent_config,
        wait_for_agent=body.wait_for_agent,
        wait_for_agent_seconds=body.wait_for_agent_timeout_seconds,
        idempotency_key=key,
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
    replayed = {idempotency.REPLAYED_HEADER: "true"} if started.replayed else None
    return START.reply(response, headers=replayed)


@routes.operation(END)
async def end_session(request: web.Request) -> web.Response:
    principal = await END.authenticate(request)
    body = await END.read_body(request)
    record = await request.app[SESSIONS].end(body.room_name, actor=principal)
    return END.reply(SessionView.of(record))
