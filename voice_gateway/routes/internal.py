"""Endpoints the agent worker calls.

The worker proves itself with a LiveKit-signed token: scoped to the room it reports on (a token
for one room cannot write another), or, for its capacity reports, carrying the `agent` grant and
no room. No extra shared secret exists."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from aiohttp import web
from livekit import api
from livekit.api.access_token import Claims
from pydantic import Field

from voice_gateway.errors import InvalidApiKey, MissingApiKey
from voice_gateway.requests import read_body
from voice_gateway.schemas import _In
from voice_gateway.state import CAPACITY, SESSION_STORE, SESSIONS, SETTINGS
from voice_gateway.store.database import now
from voice_gateway.store.models import EndReason, TranscriptSegment, WorkerState
from voice_gateway.store.sessions import JobClaim

routes = web.RouteTableDef()
M = TypeVar("M", bound=_In)

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


class WorkerReportIn(_In):
    agent_name: str = Field(min_length=1, max_length=128)
    live_sessions: int = Field(ge=0, le=100_000)
    max_sessions: int = Field(ge=1, le=100_000)
    draining: bool


class JobClaimIn(_In):
    session_id: str = Field(min_length=1, max_length=40)
    attempt: int = Field(ge=1, le=100)
    job_id: str = Field(min_length=1, max_length=64)
    worker_id: str = Field(min_length=1, max_length=64)


class AgentAudioIn(_In):
    at: datetime


def _worker_claims(request: web.Request) -> Claims:
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
    if claims.identity != WORKER_IDENTITY or claims.video is None:
        raise InvalidApiKey("the worker token is not valid")
    return claims


def _verify_worker(request: web.Request, room_name: str) -> None:
    video = _worker_claims(request).video
    if video is None or video.room != room_name or not video.room_admin:
        raise InvalidApiKey("the worker token is not valid for this room")


async def _room_report(request: web.Request, model: type[M]) -> tuple[str, M]:
    """The room a worker reports on, its token checked for that room, and the report."""
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    return room_name, await read_body(request, model)


@routes.post("/internal/v1/workers/{worker_id}/report")
async def worker_report(request: web.Request) -> web.Response:
    """A worker's capacity: every few seconds, and at once when it starts draining."""
    video = _worker_claims(request).video
    if video is None or not video.agent or video.room:
        raise InvalidApiKey("the worker token is not valid for capacity reports")
    worker_id = request.match_info["worker_id"]
    if not 0 < len(worker_id) <= 64:
        raise InvalidApiKey("the worker id is not valid")
    body = await read_body(request, WorkerReportIn)
    await request.app[CAPACITY].report(WorkerState(worker_id=worker_id, **body.model_dump()))
    return web.json_response({"ok": True})


@routes.post("/internal/v1/sessions/{room}/job")
async def claim_job(request: web.Request) -> web.Response:
    """A job asks to join its room; only the first job of the current dispatch may (409 else)."""
    room_name, body = await _room_report(request, JobClaimIn)
    record = await request.app[SESSIONS].claim_job(
        room_name,
        JobClaim(
            session_id=body.session_id,
            attempt=body.attempt,
            job_id=body.job_id,
            worker_id=body.worker_id,
            at=now(),
        ),
    )
    return web.json_response({"sessionId": record.id, "attempt": record.dispatch_attempts})


@routes.post("/internal/v1/sessions/{room}/first-agent-audio")
async def first_agent_audio(request: web.Request) -> web.Response:
    room_name, body = await _room_report(request, AgentAudioIn)
    await request.app[SESSIONS].first_agent_audio(room_name, body.at)
    return web.json_response({"ok": True})


@routes.post("/internal/v1/sessions/{room}/transcript")
async def add_transcript(request: web.Request) -> web.Response:
    room_name, body = await _room_report(request, TranscriptIn)
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
    room_name, body = await _room_report(request, AgentFailureIn)
    record = await request.app[SESSIONS].fail(
        room_name, reason=EndReason.AGENT_FAILED, error=body.error
    )
    return web.json_response({"status": record.status.value, "endReason": record.end_reason})
