"""Read API: sessions with filters and cursor pagination, one session, its transcript, usage."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from aiohttp import web

from voice_gateway.errors import MethodNotAllowed, SessionNotFound
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.pagination import decode_cursor, page_of
from voice_gateway.schemas import (
    ROOM_PARAM,
    SessionListQuery,
    SessionPage,
    SessionView,
    TranscriptSegmentView,
    TranscriptView,
    UsageQuery,
    UsageTotals,
    UsageView,
)
from voice_gateway.state import CHAT_STORE, SESSION_STORE, SESSIONS
from voice_gateway.store.sessions import SessionQuery

routes = ApiRoutes()

LIST = Operation(
    method="GET",
    path="/v1/sessions",
    summary="Sessions, newest first, filtered and paged by cursor",
    tag="sessions",
    scope="sessions:read",
    query=SessionListQuery,
    responses={200: SessionPage},
)
SHOW = Operation(
    method="GET",
    path="/v1/sessions/{room}",
    # Not /v1/sessions/start or /end, so those paths answer 405 to a GET, not session_not_found.
    route="/v1/sessions/{room:(?!(?:start|end)$)[^/]+}",
    summary="One session: state, timestamps, end reason, participants",
    tag="sessions",
    scope="sessions:read",
    path_params={"room": {**ROOM_PARAM, "not": {"enum": ["start", "end"]}}},
    responses={200: SessionView},
    errors=(SessionNotFound, MethodNotAllowed),  # 405 for "start" and "end", the POST paths
)
TRANSCRIPT = Operation(
    method="GET",
    path="/v1/sessions/{room}/transcript",
    summary="A session's final transcript lines, in the order they were spoken",
    tag="sessions",
    scope="sessions:read",
    path_params={"room": ROOM_PARAM},
    responses={200: TranscriptView},
    errors=(SessionNotFound,),
)
USAGE = Operation(
    method="GET",
    path="/v1/usage",
    summary="Sessions and minutes, in total and per agent",
    tag="sessions",
    scope="sessions:read",
    query=UsageQuery,
    responses={200: UsageView},
)


@routes.operation(LIST)
async def list_sessions(request: web.Request) -> web.Response:
    await LIST.authenticate(request)
    q = LIST.read_query(request)
    records = await request.app[SESSION_STORE].query(
        SessionQuery(
            statuses=tuple(q.status),
            agent_id=q.agent_id,
            user_identity=q.user_identity,
            channel=q.channel,
            since=q.since,
            until=q.until,
            after=decode_cursor(q.cursor) if q.cursor else None,
            limit=q.limit + 1,
        )
    )
    page, meta = page_of(records, q.limit, lambda r: (r.created_at, r.id))
    return LIST.reply(SessionPage(data=[SessionView.of(r) for r in page], meta=meta))


@routes.operation(SHOW)
async def show_session(request: web.Request) -> web.Response:
    await SHOW.authenticate(request)
    record = await request.app[SESSIONS].get(request.match_info["room"])
    return SHOW.reply(SessionView.of(record, detail=True))


@routes.operation(TRANSCRIPT)
async def session_transcript(request: web.Request) -> web.Response:
    await TRANSCRIPT.authenticate(request)
    record = await request.app[SESSIONS].get(request.match_info["room"])
    segments = await request.app[SESSION_STORE].transcript(record.id)
    return TRANSCRIPT.reply(
        TranscriptView(
            session_id=record.id,
            room_name=record.room_name,
            segments=[TranscriptSegmentView.of(s) for s in segments],
        )
    )


@routes.operation(USAGE)
async def usage(request: web.Request) -> web.Response:
    """Minutes are counted from start to end, or to now for a session still running, for voice
    sessions; a chat session counts as a session and by its messages."""
    await USAGE.authenticate(request)
    q = USAGE.read_query(request)
    records = await request.app[SESSION_STORE].query(
        SessionQuery(since=q.since, until=q.until, limit=None)
    )
    typed = await request.app[CHAT_STORE].typed_messages(since=q.since, until=q.until)
    now = datetime.now(UTC)
    fields = ("sessions", "minutes", "messages")
    per_agent: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(fields, 0.0))
    for r in records:
        if r.started_at is None:
            continue
        per_agent[r.agent_id]["sessions"] += 1
        if not r.is_chat:
            minutes = ((r.ended_at or now) - r.started_at).total_seconds() / 60
            per_agent[r.agent_id]["minutes"] += minutes
    for agent, count in typed.items():
        per_agent[agent]["messages"] += count

    def totals(a: dict[str, float]) -> UsageTotals:
        return UsageTotals(
            sessions=int(a["sessions"]), minutes=round(a["minutes"], 3), messages=int(a["messages"])
        )

    return USAGE.reply(
        UsageView(
            since=q.since,
            until=q.until,
            total=totals({k: sum(a[k] for a in per_agent.values()) for k in fields}),
            agents={agent: totals(a) for agent, a in sorted(per_agent.items())},
        )
    )
