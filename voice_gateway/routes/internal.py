"""Endpoints the agent worker calls.

The worker proves itself with a LiveKit-signed token: scoped to the room it reports on (a token
for one room cannot write another), or, for its capacity reports, carrying the `agent` grant and
no room. No extra shared secret exists."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from livekit import api
from livekit.api.access_token import Claims
from pydantic import Field

from voice_gateway.errors import (
    InvalidApiKey,
    JobNotWanted,
    LiveKitUnavailable,
    MissingApiKey,
    SessionNotFound,
)
from voice_gateway.operations import ApiRoutes, Auth, Operation
from voice_gateway.schemas import ROOM_PARAM, Timestamp, _In, _Out
from voice_gateway.state import CAPACITY, HANDOFF, SESSION_STORE, SESSIONS, SETTINGS
from voice_gateway.store.database import now
from voice_gateway.store.models import EndReason, Modality, TranscriptSegment, WorkerState
from voice_gateway.store.sessions import JobClaim

routes = ApiRoutes()

WORKER_IDENTITY = "agent-worker"


class SegmentIn(_In):
    segment_id: str = Field(min_length=1, max_length=128)
    speaker: Literal["user", "agent"]
    text: str = Field(min_length=1, max_length=10000)
    spoken_at: Timestamp
    # How the user said it: spoken, or typed in the room (livekit-agents' text input).
    modality: Modality = Modality.VOICE


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
    at: Timestamp


class Ack(_Out):
    ok: bool


class JobClaimAck(_Out):
    session_id: str
    attempt: int


class TranscriptAck(_Out):
    added: int = Field(description="Segments stored now; a resent segment id is not added twice")


class SessionStateAck(_Out):
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
    responses={200: SessionStateAck},
    errors=(SessionNotFound, LiveKitUnavailable),
)


WORKER_REPORT = Operation(
    method="POST",
    path="/internal/v1/workers/{worker_id}/report",
    summary="An agent worker reports its capacity, and at once when it drains (internal)",
    tag="internal",
    auth=Auth.AGENT_WORKER,
    path_params={"worker_id": {"type": "string", "minLength": 1, "maxLength": 64}},
    body=WorkerReportIn,
    responses={200: Ack},
)
CLAIM_JOB = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/job",
    summary="A worker's job claims its session before joining: one job per dispatch (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    body=JobClaimIn,
    responses={200: JobClaimAck},
    errors=(SessionNotFound, JobNotWanted),
)
FIRST_AGENT_AUDIO = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/first-agent-audio",
    summary="The agent's first audible frame, for the setup timeline (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    body=AgentAudioIn,
    responses={200: Ack},
    errors=(SessionNotFound,),
)


CALL_ANSWERED = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/answered",
    summary="The worker saw a phone session's call answered: the session is active (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    responses={200: SessionStateAck},
    errors=(SessionNotFound,),
)
ESCALATE = Operation(
    method="POST",
    path="/internal/v1/sessions/{room}/escalate",
    summary="The caller asked for a person: transferred to the agent's transferTo, or ended "
    "`escalated` with a session.escalated webhook (internal)",
    tag="internal",
    auth=Auth.WORKER,
    path_params={"room": ROOM_PARAM},
    responses={200: SessionStateAck},
    errors=(SessionNotFound, LiveKitUnavailable),
)


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


@routes.operation(WORKER_REPORT)
async def worker_report(request: web.Request) -> web.Response:
    video = _worker_claims(request).video
    if video is None or not video.agent or video.room:
        raise InvalidApiKey("the worker token is not valid for capacity reports")
    worker_id = request.match_info["worker_id"]
    body = await WORKER_REPORT.read_body(request)
    await request.app[CAPACITY].report(WorkerState(worker_id=worker_id, **body.model_dump()))
    return WORKER_REPORT.reply(Ack(ok=True))


@routes.operation(CLAIM_JOB)
async def claim_job(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await CLAIM_JOB.read_body(request)
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
    return CLAIM_JOB.reply(JobClaimAck(session_id=record.id, attempt=record.dispatch_attempts))


@routes.operation(FIRST_AGENT_AUDIO)
async def first_agent_audio(request: web.Request) -> web.Response:
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    body = await FIRST_AGENT_AUDIO.read_body(request)
    await request.app[SESSIONS].first_agent_audio(room_name, body.at)
    return FIRST_AGENT_AUDIO.reply(Ack(ok=True))


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
                segment_id=s.segment_id,
                speaker=s.speaker,
                text=s.text,
                spoken_at=s.spoken_at,
                modality=s.modality,
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
        SessionStateAck(status=record.status.value, end_reason=record.end_reason)
    )


@routes.operation(CALL_ANSWERED)
async def call_answered(request: web.Request) -> web.Response:
    """The worker saw the phone caller's call become active (LiveKit's sip.callStatus)."""
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    record = await request.app[SESSIONS].answered(room_name)
    return CALL_ANSWERED.reply(SessionStateAck(status=record.status.value, end_reason=None))


@routes.operation(ESCALATE)
async def escalate(request: web.Request) -> web.Response:
    """The agent heard the caller ask for a person, and has told them it is passing them on."""
    room_name = request.match_info["room"]
    _verify_worker(request, room_name)
    record = await request.app[HANDOFF].escalate(room_name)
    return ESCALATE.reply(SessionStateAck(status=record.status.value, end_reason=record.end_reason))
