"""POST /v1/sessions/start and /v1/sessions/end: the contract clients code against."""

from __future__ import annotations

import json

from aiohttp import web

from voice_gateway.errors import PayloadTooLarge
from voice_gateway.requests import authenticate, read_body
from voice_gateway.schemas import (
    EndSessionRequest,
    SessionView,
    StartSessionRequest,
    StartSessionResponse,
)
from voice_gateway.services import idempotency
from voice_gateway.services.sessions import MAX_AGENT_CONFIG_BYTES
from voice_gateway.state import SESSIONS

routes = web.RouteTableDef()


@routes.post("/v1/sessions/start")
async def start_session(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    await request.app[SESSIONS].check_rate(principal)
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await read_body(request, StartSessionRequest)
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
    return web.json_response(
        response.model_dump(by_alias=True, mode="json"),
        status=web.HTTPCreated.status_code,
        headers={idempotency.REPLAYED_HEADER: "true"} if started.replayed else None,
    )


@routes.post("/v1/sessions/end")
async def end_session(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    body = await read_body(request, EndSessionRequest)
    record = await request.app[SESSIONS].end(body.room_name, actor=principal)
    return web.json_response(SessionView.of(record).dump())
