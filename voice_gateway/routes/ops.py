"""Ops: every LiveKit room beside its session state, ending any room, a reaper pass on demand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from voice_gateway.errors import LiveKitUnavailable, NotFound
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.schemas import ROOM_PARAM, CountMeta, SessionView, _In, _Out
from voice_gateway.services.reaper import overdue
from voice_gateway.state import LIVEKIT, PHONE_LINES, REAPER, SESSION_STORE, SESSIONS
from voice_gateway.store.database import now
from voice_gateway.store.models import EndReason

routes = ApiRoutes()
SCOPE = "ops:write"


class RoomNotFound(NotFound):
    code = "room_not_found"


class ReapRequest(_In):
    dry_run: bool = False


class ReadyLineView(_Out):
    number_id: str
    number: str
    agent_id: str


class RoomView(_Out):
    room_name: str
    sid: str
    num_participants: int = Field(
        description="LiveKit's count of the room's participants, agents not included"
    )
    created_at: datetime
    orphan: bool
    phone_line: ReadyLineView | None = Field(
        description="The phone number whose next call lands in this room (a ready room: "
        "recorded, not an orphan); null for other rooms"
    )
    overdue: bool
    session: SessionView | None


class RoomList(_Out):
    data: list[RoomView]
    meta: CountMeta


class EndedRoomView(_Out):
    room_name: str
    deleted: bool
    session: SessionView | None


class ReapActionView(_Out):
    room_name: str
    session_id: str | None
    reason: str
    action: Literal["end", "flag", "redispatch", "answered"]


class ReapView(_Out):
    dry_run: bool
    actions: list[ReapActionView]


ROOMS = Operation(
    method="GET",
    path="/v1/ops/rooms",
    summary="Every LiveKit room with its session, flagging orphans and overdue rooms",
    tag="ops",
    scope=SCOPE,
    responses={200: RoomList},
    errors=(LiveKitUnavailable,),
)
END_ROOM = Operation(
    method="POST",
    path="/v1/ops/rooms/{room}/end",
    summary="End any room, known or not (recorded as ops_ended)",
    tag="ops",
    scope=SCOPE,
    path_params={"room": ROOM_PARAM},
    responses={200: EndedRoomView},
    errors=(RoomNotFound, LiveKitUnavailable),
)
REAP = Operation(
    method="POST",
    path="/v1/ops/reap",
    summary="One reaper pass now; with dryRun it only reports",
    tag="ops",
    scope=SCOPE,
    body=ReapRequest,
    body_required=False,
    responses={200: ReapView},
    errors=(LiveKitUnavailable,),
)


@routes.operation(ROOMS)
async def list_rooms(request: web.Request) -> web.Response:
    await ROOMS.authenticate(request)
    store = request.app[SESSION_STORE]
    at = now()
    out = []
    # A phone number's ready room waits for its next call; it has a record, just not a session.
    ready = {n.ready_room: n for n in await request.app[PHONE_LINES].list() if n.ready_room}
    for room in await request.app[LIVEKIT].list_rooms():
        line = ready.get(room.name)
        record = await store.get_by_room(room.name)
        out.append(
            RoomView(
                room_name=room.name,
                sid=room.sid,
                num_participants=room.num_participants,
                created_at=datetime.fromtimestamp(room.created_at, UTC),
                orphan=record is None and line is None,
                phone_line=ReadyLineView(
                    number_id=line.id, number=line.number, agent_id=line.agent_id
                )
                if line
                else None,
                overdue=record is not None and not record.is_over and overdue(record, at),
                # With who joined when: LiveKit's count leaves agents out.
                session=SessionView.of(record, detail=True) if record else None,
            )
        )
    return ROOMS.reply(RoomList(data=out, meta=CountMeta(count=len(out))))


@routes.operation(END_ROOM)
async def end_room(request: web.Request) -> web.Response:
    """Ends any room: a session's (recorded as ops_ended) or an orphan LiveKit knows alone."""
    await END_ROOM.authenticate(request)
    name = request.match_info["room"]
    record = await request.app[SESSION_STORE].get_by_room(name)
    if record is not None and not record.is_over:
        ended = await request.app[SESSIONS].end(name, reason=EndReason.OPS_ENDED)
        return END_ROOM.reply(
            EndedRoomView(room_name=name, deleted=True, session=SessionView.of(ended))
        )
    deleted = await request.app[LIVEKIT].delete_room(name)
    if not deleted and record is None:
        raise RoomNotFound(f"no room and no session named {name!r}")
    return END_ROOM.reply(
        EndedRoomView(
            room_name=name, deleted=deleted, session=SessionView.of(record) if record else None
        )
    )


@routes.operation(REAP)
async def reap(request: web.Request) -> web.Response:
    await REAP.authenticate(request)
    body = await REAP.read_body(request) if request.can_read_body else ReapRequest()
    actions = await request.app[REAPER].run_once(dry_run=body.dry_run)
    return REAP.reply(
        ReapView(
            dry_run=body.dry_run,
            actions=[ReapActionView.model_validate(a.as_json()) for a in actions],
        )
    )
