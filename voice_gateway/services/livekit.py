"""The only module that talks to LiveKit's server API; SDK errors stop here and become ours."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from livekit import api
from livekit.api.room_service import RoomService
from livekit.protocol import agent, models
from livekit.protocol.agent_dispatch import AgentDispatch

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.metrics import LIVEKIT_DURATION, LIVEKIT_ERRORS

T = TypeVar("T")
# The attribute LiveKit's SIP service keeps a phone caller's call state in.
SIP_CALL_STATUS = "sip.callStatus"
# The room probe's packet goes to an identity no participant has, on a topic no client reads.
PROBE_IDENTITY = "voicegw-probe"
PROBE_TOPIC = "lk.voicegw.probe"


@dataclass(frozen=True, slots=True)
class ParticipantDetails:
    """What a client may say about itself in its token (LiveKit's token endpoint lets it)."""

    name: str | None = None
    metadata: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoomAgent:
    """The agent LiveKit dispatches into a room as it creates it (CreateRoom's `agents`): the
    room and its dispatch in one call, one round trip fewer on every start."""

    agent_name: str
    metadata: str


@dataclass(frozen=True, slots=True)
class LiveRoom:
    name: str
    sid: str
    num_participants: int
    created_at: int
    metadata: str


def livekit_api(settings: GatewaySettings, http: aiohttp.ClientSession) -> api.LiveKitAPI:
    # failover=False: region discovery is a LiveKit Cloud feature and must never leave loopback.
    return api.LiveKitAPI(
        settings.livekit_http_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
        session=http,
        failover=False,
    )


class RoomsGrantApi:
    """A LiveKitAPI for the calls that need no particular room (create, delete and list rooms),
    with its token signed once per half `ttl` instead of once per call: every start makes one
    such call, and the signing was a quarter of a millisecond of its CPU. Per-room calls
    (dispatches, participants) keep livekit-api's per-call token: their grant names the room."""

    def __init__(
        self, settings: GatewaySettings, http: aiohttp.ClientSession, ttl: timedelta
    ) -> None:
        self._settings = settings
        self._http = http
        self._ttl = ttl
        self._api: api.LiveKitAPI | None = None
        self._renew_at = 0.0

    @property
    def room(self) -> RoomService:
        if self._api is None or time.monotonic() >= self._renew_at:
            token = (
                api.AccessToken(
                    self._settings.livekit_api_key,
                    self._settings.livekit_api_secret.get_secret_value(),
                )
                .with_grants(api.VideoGrants(room_create=True, room_list=True))
                .with_ttl(self._ttl)
                .to_jwt()
            )
            self._api = api.LiveKitAPI.with_token(
                token, self._settings.livekit_http_url, session=self._http, failover=False
            )
            self._renew_at = time.monotonic() + self._ttl.total_seconds() / 2
        return self._api.room


class LiveKitRooms:
    def __init__(self, settings: GatewaySettings, http: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._api = livekit_api(settings, http)
        self._rooms_api = RoomsGrantApi(settings, http, ttl=timedelta(minutes=10))
        self._timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_seconds)

    async def create_room(
        self,
        name: str,
        *,
        metadata: dict[str, Any],
        max_participants: int = 8,
        empty_timeout: int | None = None,
        agent: RoomAgent | None = None,
    ) -> None:
        """Agents do not count towards max_participants (LiveKit counts them as dependent).
        With `agent`, the room is created with that agent's dispatch: a regular dispatch that
        ListDispatch shows and DeleteDispatch withdraws, like CreateDispatch's."""
        request = api.CreateRoomRequest(
            name=name,
            empty_timeout=empty_timeout or self._settings.room_empty_timeout_seconds,
            departure_timeout=self._settings.room_departure_timeout_seconds,
            max_participants=max_participants,
            metadata=json.dumps(metadata),
            agents=[api.RoomAgentDispatch(agent_name=agent.agent_name, metadata=agent.metadata)]
            if agent is not None
            else [],
        )
        await self._call("create the room", self._rooms_api.room.create_room(request))

    async def dispatch_agent(self, room: str, *, agent_name: str, metadata: str) -> str:
        request = api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=room, metadata=metadata
        )
        dispatch = await self._call(
            "dispatch the agent", self._api.agent_dispatch.create_dispatch(request)
        )
        return str(dispatch.id)

    async def dispatch_taken(self, room: str, *, agent_name: str) -> bool:
        """Whether LiveKit assigned a job of the room's `agent_name` dispatch to a worker (its
        process may still be starting); False when the dispatch was dropped."""
        live = (agent.JobStatus.JS_PENDING, agent.JobStatus.JS_RUNNING)
        return any(
            job.state.status in live
            for dispatch in await self._dispatches(room, agent_name)
            for job in dispatch.state.jobs
        )

    async def _dispatches(self, room: str, agent_name: str) -> list[AgentDispatch]:
        try:
            listed = await self._call(
                "list dispatches", self._api.agent_dispatch.list_dispatch(room_name=room)
            )
        except NotFoundInLiveKit:
            return []
        return [d for d in listed if d.agent_name == agent_name]

    async def withdraw_dispatches(self, room: str, *, agent_name: str) -> int:
        """Deletes the room's dispatches of `agent_name`; LiveKit then terminates their jobs and
        removes their agents from the room, so a re-dispatch can never bring a second agent.
        (LiveKit also keeps an implicit dispatch for unnamed agents in every room: left alone.)"""
        dispatches = await self._dispatches(room, agent_name)
        for dispatch in dispatches:
            try:
                await self._call(
                    "delete a dispatch",
                    self._api.agent_dispatch.delete_dispatch(dispatch.id, room),
                )
            except NotFoundInLiveKit:
                continue
        return len(dispatches)

    async def delete_room(self, name: str) -> bool:
        """True when a room was deleted, False when LiveKit had no such room (already gone).

        A room whose LiveKit node died stays listed (Redis keeps it) yet no node can delete it:
        DeleteRoom is routed to the dead node. Then the room is placed again (a CreateRoom of
        the name alone, which keeps the room's settings, moves a room off a node that stopped
        reporting onto a live one) and deleted there."""
        try:
            await self._delete_room(name)
        except (NotFoundInLiveKit, LiveKitUnavailable):
            if not await self._listed(name):
                return False
            await self._call(
                "place the room again",
                self._rooms_api.room.create_room(api.CreateRoomRequest(name=name)),
            )
            try:
                await self._delete_room(name)
            except NotFoundInLiveKit:
                return False
        return True

    async def _delete_room(self, name: str) -> None:
        await self._call(
            "delete the room",
            self._rooms_api.room.delete_room(api.DeleteRoomRequest(room=name)),
        )

    async def _listed(self, name: str) -> bool:
        return any(r.name == name for r in await self.list_rooms([name]))

    async def room_reachable(self, name: str) -> bool:
        """Whether the node hosting the room answers for it. ListRooms and ListParticipants read
        Redis, which still shows a dead node's rooms with their last participants; a data packet
        to nobody travels to the room's own node, so only a live node can accept it."""
        request = api.SendDataRequest(
            room=name, data=b"", destination_identities=[PROBE_IDENTITY], topic=PROBE_TOPIC
        )
        try:
            await self._call("probe the room", self._api.room.send_data(request))
        except (NotFoundInLiveKit, LiveKitUnavailable):
            return False
        return True

    async def list_rooms(self, names: list[str] | None = None) -> list[LiveRoom]:
        response = await self._call(
            "list rooms",
            self._rooms_api.room.list_rooms(api.ListRoomsRequest(names=names or [])),
        )
        return [
            LiveRoom(
                name=r.name,
                sid=r.sid,
                num_participants=r.num_participants,
                created_at=r.creation_time,
                metadata=r.metadata,
            )
            for r in response.rooms
        ]

    async def has_users(self, room: str) -> bool:
        """Whether a person (not an agent) is still in the room."""
        agent = models.ParticipantInfo.Kind.AGENT
        return any(kind != agent for kind in await self._participant_kinds(room))

    async def has_agent(self, room: str) -> bool:
        agent = models.ParticipantInfo.Kind.AGENT
        return any(kind == agent for kind in await self._participant_kinds(room))

    async def agent_joined_at(self, room: str) -> datetime | None:
        """When an agent joined the room, by LiveKit's stamp; None while there is none. A joined
        agent is in the room for a client that joins now, before LiveKit's participant_joined
        webhook (sent once its media connection is up)."""
        agent = models.ParticipantInfo.Kind.AGENT
        for p in await self._participants(room):
            if p.kind == agent:
                ms = p.joined_at_ms or p.joined_at * 1000
                return datetime.fromtimestamp(ms / 1000, UTC) if ms else datetime.now(UTC)
        return None

    async def sip_call_active(self, room: str) -> bool:
        """Whether a phone caller in the room has an answered call (LiveKit's SIP service marks
        its participant `sip.callStatus: active`)."""
        sip = models.ParticipantInfo.Kind.SIP
        return any(
            p.kind == sip and p.attributes.get(SIP_CALL_STATUS) == "active"
            for p in await self._participants(room)
        )

    async def _participant_kinds(self, room: str) -> list[int]:
        return [p.kind for p in await self._participants(room)]

    async def _participants(self, room: str) -> list[models.ParticipantInfo]:
        try:
            response = await self._call(
                "list participants",
                self._api.room.list_participants(api.ListParticipantsRequest(room=room)),
            )
        except NotFoundInLiveKit:
            return []
        return list(response.participants)

    def user_token(
        self, *, room: str, identity: str, details: ParticipantDetails | None = None
    ) -> str:
        grants = api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
            can_publish_sources=["microphone"],
        )
        token = (
            api.AccessToken(
                self._settings.livekit_api_key, self._settings.livekit_api_secret.get_secret_value()
            )
            .with_identity(identity)
            .with_grants(grants)
            .with_ttl(timedelta(seconds=self._settings.token_ttl_seconds))
        )
        if details is not None:
            if details.name:
                token = token.with_name(details.name)
            if details.metadata:
                token = token.with_metadata(details.metadata)
            if details.attributes:
                token = token.with_attributes(details.attributes)
        return token.to_jwt()

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        return await call_livekit(what, call, self._settings.livekit_timeout_seconds)


async def call_livekit(what: str, call: Awaitable[T], limit_seconds: float) -> T:
    """One LiveKit server API call, timed and bounded, its errors translated (rooms and SIP)."""
    async with _translate(what, _call_name(call)), asyncio.timeout(limit_seconds):
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the call in a new task.
        return await call


class NotFoundInLiveKit(Exception):
    pass


def _call_name(call: Awaitable[object]) -> str:
    """The SDK method behind the awaitable (`RoomService.create_room`): a metric label that
    new calls get without naming one."""
    return str(getattr(call, "__qualname__", "unknown"))


@asynccontextmanager
async def _translate(what: str, call: str) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    except api.TwirpError as exc:
        if exc.status == 404 or exc.code == "not_found":
            raise NotFoundInLiveKit() from None
        LIVEKIT_ERRORS.labels(call=call, error=str(exc.code)).inc()
        raise LiveKitUnavailable(
            f"LiveKit refused to {what} (status {exc.status}, code {exc.code})"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        error = "timeout" if isinstance(exc, TimeoutError) else "connection"
        LIVEKIT_ERRORS.labels(call=call, error=error).inc()
        raise LiveKitUnavailable(
            f"LiveKit did not answer when asked to {what} ({type(exc).__name__})"
        ) from None
    finally:
        LIVEKIT_DURATION.labels(call=call).observe(time.perf_counter() - started)
