"""Endpoints the agent worker calls.

The worker proves itself with a LiveKit-signed token scoped to the room it reports on: no extra
shared secret exists, and a token for one room cannot write another."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from livekit import api
from pydantic import Field

from voice_gateway.errors import InvalidApiKey, MissingApiKey
from voice_gateway.requests import read_body
from voice_gateway.schemas import _In
from voice_gateway.state import HANDOFF, SESSION_STORE, SESSIONS, SETTINGS
from voice_gateway.store.models import EndReason, TranscriptSegment

routes = web.RouteTableDef()

WORKER_IDENTITY = "agent-worker"


class SegmentIn(_In):
    segment_id: str = Field(min_length=1, max_length=128)
    speaker: Literal["user", "agent"]
    text: str = Field(min_length=1, max_length=10000)
    spoken_at: datetime


class TranscriptIn(_In):
    segments: list[SegmentIn] = Field(min_length=1, max_length=100)


class AgentFailureIn(_In):
    error: str = Field(min_length=1, max_length=2000)


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


@routes.post("/internal/v1/sessions/{room}/transcript")
async def add_transcript(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await read_body(request, TranscriptIn)
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
    return web.json_response({"added": added})


@routes.post("/internal/v1/sessions/{room}/agent-failed")
async def agent_failed(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await read_body(request, AgentFailureIn)
    record = await request.app[SESSIONS].fail(
        room_name, reason=EndReason.AGENT_FAILED, error=body.error
    )
    return web.json_response({"status": record.status.value, "endReason": record.end_reason})


@routes.post("/internal/v1/sessions/{room}/answered")
async def call_answered(request: web.Request) -> web.Response:
    """The worker saw the phone caller's call become active (LiveKit's sip.callStatus)."""
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    record = await request.app[SESSIONS].answered(room_name)
    return web.json_response({"status": record.status.value})


@routes.post("/internal/v1/sessions/{room}/escalate")
async def escalate(request: web.Request) -> web.Response:
    """The agent heard the caller ask for a person, and has told them it is passing them on."""
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    record = await request.app[HANDOFF].escalate(room_name)
    return web.json_response({"status": record.status.value, "endReason": record.end_reason})
