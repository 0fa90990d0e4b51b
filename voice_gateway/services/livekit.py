"""The only module that talks to LiveKit's server API; SDK errors stop here and become ours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from livekit import api
from livekit.protocol import models

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import LiveKitUnavailable

T = TypeVar("T")


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


class LiveKitRooms:
    def __init__(self, settings: GatewaySettings, http: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._api = livekit_api(settings, http)
        self._timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_seconds)

    async def create_room(
        self,
        name: str,
        *,
        metadata: dict[str, Any],
        max_participants: int = 8,
        empty_timeout: int | None = None,
    ) -> None:
        """Agents do not count towards max_participants (LiveKit counts them as dependent)."""
        request = api.CreateRoomRequest(
            name=name,
            empty_timeout=empty_timeout or self._settings.room_empty_timeout_seconds,
            departure_timeout=self._settings.room_departure_timeout_seconds,
            max_participants=max_participants,
            metadata=json.dumps(metadata),
        )
        await self._call("create the room", self._api.room.create_room(request))

    async def dispatch_agent(self, room: str, *, agent_name: str, metadata: str) -> str:
        request = api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=room, metadata=metadata
        )
        dispatch = await self._call(
            "dispatch the agent", self._api.agent_dispatch.create_dispatch(request)
        )
        return str(dispatch.id)

    async def delete_room(self, name: str) -> bool:
        """True when a room was deleted, False when LiveKit had no such room (already gone)."""
        try:
            await self._call(
                "delete the room", self._api.room.delete_room(api.DeleteRoomRequest(room=name))
            )
        except _NotFound:
            return False
        return True

    async def list_rooms(self, names: list[str] | None = None) -> list[LiveRoom]:
        response = await self._call(
            "list rooms", self._api.room.list_rooms(api.ListRoomsRequest(names=names or []))
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

    async def _participant_kinds(self, room: str) -> list[int]:
        try:
            response = await self._call(
                "list participants",
                self._api.room.list_participants(api.ListParticipantsRequest(room=room)),
            )
        except _NotFound:
            return []
        return [p.kind for p in response.participants]

    def user_token(self, *, room: str, identity: str) -> str:
        grants = api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
            can_publish_sources=["microphone"],
        )
        return (
            api.AccessToken(
                self._settings.livekit_api_key, self._settings.livekit_api_secret.get_secret_value()
            )
            .with_identity(identity)
            .with_grants(grants)
            .with_ttl(timedelta(seconds=self._settings.token_ttl_seconds))
            .to_jwt()
        )

    async def remove_participant(self, room: str, identity: str) -> bool:
        try:
            await self._call(
                "remove a participant",
                self._api.room.remove_participant(
                    api.RoomParticipantIdentity(room=room, identity=identity)
                ),
            )
        except NotFoundInLiveKit:
            return False
        return True

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        return await call_livekit(what, call, self._settings.livekit_timeout_seconds)


async def call_livekit(what: str, call: Awaitable[T], limit_seconds: float) -> T:
    async with _translate(what):
        return await asyncio.wait_for(call, limit_seconds)


class NotFoundInLiveKit(Exception):
    pass


_NotFound = NotFoundInLiveKit


@asynccontextmanager
async def _translate(what: str) -> AsyncIterator[None]:
    try:
        yield
    except api.TwirpError as exc:
        if exc.status == 404 or exc.code == "not_found":
            raise _NotFound() from None
        raise LiveKitUnavailable(
            f"LiveKit refused to {what} (status {exc.status}, code {exc.code})"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise LiveKitUnavailable(
            f"LiveKit did not answer when asked to {what} ({type(exc).__name__})"
        ) from None
