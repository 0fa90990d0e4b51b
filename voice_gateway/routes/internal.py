"""Endpoints the agent worker calls.

The worker proves itself with a LiveKit-signed token scoped to the room it reports on: no extra
shared secret exists, and a token for one room cannot write another."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from livekit import api
from pydantic import Field

from voice_gateway.errors import InvalidApiKey, LiveKitUnavailable, MissingApiKey, SessionNotFound
from voice_gateway.operations import ApiRoutes, Auth, Operation
from voice_gateway.schemas import ROOM_PARAM, Timestamp, _In, _Out
from voice_gateway.state import SESSION_STORE, SESSIONS, SETTINGS
from voice_gateway.store.models import EndReason, TranscriptSegment

routes = ApiRoutes()

WORKER_IDENTITY = "agent-worker"


class SegmentIn(_In):
    segment_id: str = Field(min_length=1, max_length=128)
    speaker: Literal["user", "agent"]
    text: str = Field(min_length=1, max_length=10000)
    spoken_at: Timestamp


class TranscriptIn(_In):
    segments: list[SegmentIn] = Field(min_length=1, max_length=100)


class AgentFailureIn(_In):
    error: str = Field(min_length=1, max_length=2000)


class TranscriptAck(_Out):
    added: int = Field(description="Segments stored now; a resent segment id is not added twice")


class AgentFailureAck(_Out):
    status: str
    end_reason: str | None


ADD_TRANSCRIPT = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/transcript",
    summary="The agent worker reports final transcript lines (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    body=TranscriptIn,
    responses={200: TranscriptAck},
    errors=(SessionNotFound,),
)
AGENT_FAILED = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/agent-failed",
    summary="The agent worker cannot run the session: it fails and its room closes (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    body=AgentFailureIn,
    responses={200: AgentFailureAck},
    errors=(SessionNotFound, LiveKitUnavailable),
)


def _verify_worker(request: web.Request, room_name: str) -> None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise MissingApiKey("the worker must send a LiveKit-signed bearer token")
    settings = request.app[SETTINGS]
    verifier = api.TokenVerifier(
        settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
    )
    try:
        claims = verifier.verify(token.strip())
    except Exception:
        raise InvalidApiKey("the worker token is not valid") from None
    video = claims.video
    if claims.identity != WORKER_IDENTITY or video is None or video.room != room_name:
        raise InvalidApiKey("the worker token is not valid for this room")
    if not video.room_admin:
        raise InvalidApiKey("the worker token is not valid for this room")


@routes.operation(ADD_TRANSCRIPT)
async def add_transcript(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await ADD_TRANSCRIPT.read_body(request)
    record = await request.app[SESSIONS].get(room_name)
    added = await request.app[SESSION_STORE].add_segments(
        record.id,
        [
            TranscriptSegment(
                segment_id=s.segment_id, speaker=s.speaker, text=s.text, spoken_at=s.spoken_at
            )
            for s in body.segments
        ],
    )
    return ADD_TRANSCRIPT.reply(TranscriptAck(added=added))


@routes.operation(AGENT_FAILED)
async def agent_failed(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await AGENT_FAILED.read_body(request)
    record = await request.app[SESSIONS].fail(
        room_name, reason=EndReason.AGENT_FAILED, error=body.error
    )
    return AGENT_FAILED.reply(
        AgentFailureAck(status=record.status.value, end_reason=record.end_reason)
    )
