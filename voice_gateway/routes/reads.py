"""Read API: sessions with filters and cursor pagination, one session, its transcript, usage."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from voice_gateway.errors import InvalidRequest
from voice_gateway.requests import authenticate
from voice_gateway.schemas import SessionListQuery, SessionView, TranscriptSegmentView, UsageQuery
from voice_gateway.services.sessions import describe_validation_error
from voice_gateway.state import SESSION_STORE, SESSIONS
from voice_gateway.store.sessions import SessionQuery

routes = web.RouteTableDef()
Q = TypeVar("Q", SessionListQuery, UsageQuery)


def _query_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values if key == "status" else values[-1]
    if "status" in params:
        params["status"] = [s for v in params["status"] for s in v.split(",") if s]
    return params


def _parse(model: type[Q], request: web.Request) -> Q:
    try:
        return model.model_validate(_query_params(request))
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None


def _encode_cursor(created_at: datetime, session_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, sid = json.loads(raw)
        return datetime.fromisoformat(created), str(sid)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest("cursor: not a cursor this API returned") from None


@routes.get("/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    await authenticate(request, "sessions:read")
    q = _parse(SessionListQuery, request)
    records = await request.app[SESSION_STORE].query(
        SessionQuery(
            statuses=tuple(q.status),
            agent_id=q.agent_id,
            user_identity=q.user_identity,
            channel=q.channel,
            since=q.since,
            until=q.until,
            after=_decode_cursor(q.cursor) if q.cursor else None,
            limit=q.limit + 1,
        )
    )
    page, more = records[: q.limit], len(records) > q.limit
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return web.json_response(
        {
            "data": [SessionView.of(r).dump() for r in page],
            "meta": {"count": len(page), "limit": q.limit, "nextCursor": next_cursor},
        }
    )


@routes.get("/v1/sessions/{room}")
async def show_session(request: web.Request) -> web.Response:
    await authenticate(request, "sessions:read")
    record = await request.app[SESSIONS].get(request.match_info["room"])
    return web.json_response(SessionView.of(record, detail=True).dump())


@routes.get("/v1/sessions/{room}/transcript")
async def session_transcript(request: web.Request) -> web.Response:
    await authenticate(request, "sessions:read")
    record = await request.app[SESSIONS].get(request.match_info["room"])
    segments = await request.app[SESSION_STORE].transcript(record.id)
    return web.json_response(
        {
            "sessionId": record.id,
            "roomName": record.room_name,
            "segments": [
                TranscriptSegmentView(
                    speaker=s.speaker, text=s.text, spoken_at=s.spoken_at
                ).model_dump(by_alias=True, mode="json")
                for s in segments
            ],
        }
    )


@routes.get("/v1/usage")
async def usage(request: web.Request) -> web.Response:
    """Minutes are counted from start to end, or to now for a session still running."""
    await authenticate(request, "sessions:read")
    q = _parse(UsageQuery, request)
    records = await request.app[SESSION_STORE].query(
        SessionQuery(since=q.since, until=q.until, limit=None)
    )
    now = datetime.now(UTC)
    per_agent: dict[str, dict[str, float]] = defaultdict(lambda: {"sessions": 0, "minutes": 0.0})
    for r in records:
        if r.started_at is None:
            continue
        minutes = ((r.ended_at or now) - r.started_at).total_seconds() / 60
        per_agent[r.agent_id]["sessions"] += 1
        per_agent[r.agent_id]["minutes"] += minutes
    return web.json_response(
        {
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "total": {
                "sessions": int(sum(a["sessions"] for a in per_agent.values())),
                "minutes": round(sum(a["minutes"] for a in per_agent.values()), 3),
            },
            "agents": {
                agent: {"sessions": int(a["sessions"]), "minutes": round(a["minutes"], 3)}
                for agent, a in sorted(per_agent.items())
            },
        }
    )
