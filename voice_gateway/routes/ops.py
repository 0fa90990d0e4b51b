"""Ops: every LiveKit room beside its session state, ending any room, a reaper pass on demand."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from voice_gateway.errors import NotFound
from voice_gateway.requests import authenticate, read_body
from voice_gateway.schemas import SessionView, _In
from voice_gateway.services.reaper import overdue
from voice_gateway.state import LIVEKIT, PHONE_LINES, REAPER, SESSION_STORE, SESSIONS
from voice_gateway.store.database import now
from voice_gateway.store.models import EndReason

routes = web.RouteTableDef()


class RoomNotFound(NotFound):
    code = "room_not_found"


class ReapRequest(_In):
    dry_run: bool = False


@routes.get("/v1/ops/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    await authenticate(request, "ops:write")
    store = request.app[SESSION_STORE]
    at = now()
    out = []
    # A phone number's ready room waits for its next call; it has a record, just not a session.
    ready = await request.app[PHONE_LINES].ready_rooms()
    for room in await request.app[LIVEKIT].list_rooms():
        record = await store.get_by_room(room.name)
        out.append(
            {
                "roomName": room.name,
                "sid": room.sid,
                "numParticipants": room.num_participants,
                "createdAt": datetime.fromtimestamp(room.created_at, UTC).isoformat(),
                "orphan": record is None and room.name not in ready,
                "phoneReadyRoom": room.name in ready,
                "overdue": record is not None and not record.is_over and overdue(record, at),
                "session": SessionView.of(record).dump() if record else None,
            }
        )
    return web.json_response({"data": out, "meta": {"count": len(out)}})


@routes.post("/v1/ops/rooms/{room}/end")
async def end_room(request: web.Request) -> web.Response:
    """Ends any room: a session's (recorded as ops_ended) or an orphan LiveKit knows alone."""
    await authenticate(request, "ops:write")
    name = request.match_info["room"]
    record = await request.app[SESSION_STORE].get_by_room(name)
    if record is not None and not record.is_over:
        ended = await request.app[SESSIONS].end(name, reason=EndReason.OPS_ENDED)
        return web.json_response(
            {"roomName": name, "deleted": True, "session": SessionView.of(ended).dump()}
        )
    deleted = await request.app[LIVEKIT].delete_room(name)
    if not deleted and record is None:
        raise RoomNotFound(f"no room and no session named {name!r}")
    return web.json_response(
        {
            "roomName": name,
            "deleted": deleted,
            "session": SessionView.of(record).dump() if record else None,
        }
    )


@routes.post("/v1/ops/reap")
async def reap(request: web.Request) -> web.Response:
    await authenticate(request, "ops:write")
    body = await read_body(request, ReapRequest) if request.can_read_body else ReapRequest()
    actions = await request.app[REAPER].run_once(dry_run=body.dry_run)
    return web.json_response({"dryRun": body.dry_run, "actions": [a.as_json() for a in actions]})
