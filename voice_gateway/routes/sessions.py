"""POST /v1/sessions/start and /v1/sessions/end: the contract clients code against."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.requests import authenticate, read_body
from voice_gateway.schemas import (
    EndSessionRequest,
    SessionView,
    StartSessionRequest,
    StartSessionResponse,
)
from voice_gateway.state import SESSIONS

routes = web.RouteTableDef()


@routes.post("/v1/sessions/start")
async def start_session(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    await request.app[SESSIONS].check_rate(principal)
    body = await read_body(request, StartSessionRequest)
    started = await request.app[SESSIONS].start_requested(
        principal=principal,
        agent_id=body.agent_id,
        user_identity=body.user_identity,
        overrides=body.agent_config,
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
        response.model_dump(by_alias=True, mode="json"), status=web.HTTPCreated.status_code
    )


@routes.post("/v1/sessions/end")
async def end_session(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    body = await read_body(request, EndSessionRequest)
    record = await request.app[SESSIONS].end(body.room_name, actor=principal)
    return web.json_response(SessionView.of(record).dump())
