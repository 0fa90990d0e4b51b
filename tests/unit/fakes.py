"""A LiveKit fake for unit tests of one module. It implements LiveKitRooms' interface; it is never
the proof that a feature works (the end-to-end tests use a real livekit-server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.services.livekit import LiveKitRooms, LiveRoom, ParticipantDetails


class FakeLiveKit(LiveKitRooms):
    def __init__(self) -> None:  # no super(): nothing to connect to
        self.rooms: dict[str, LiveRoom] = {}
        self.agents: set[str] = set()
        self.taken: set[str] = set()  # rooms whose dispatch LiveKit assigned to a worker
        self.fail_on: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.lost: set[str] = set()  # rooms whose LiveKit node died (still listed, unreachable)

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail_on:
            raise LiveKitUnavailable(f"LiveKit did not answer when asked to {what}")

    async def create_room(self, name: str, *, metadata: dict[str, Any]) -> None:
        self.calls.append(("create_room", name))
        self._maybe_fail("create the room")
        self.rooms[name] = LiveRoom(name, f"RM_{name}", 0, 0, "")

    async def dispatch_agent(self, room: str, *, agent_name: str, metadata: str) -> str:
        self.calls.append(("dispatch_agent", room))
        self._maybe_fail("dispatch the agent")
        return "AD_1"

    async def dispatch_taken(self, room: str, *, agent_name: str) -> bool:
        return room in self.taken

    async def withdraw_dispatches(self, room: str, *, agent_name: str) -> int:
        self.calls.append(("withdraw_dispatches", room))
        self._maybe_fail("list dispatches")
        return 1

    async def delete_room(self, name: str) -> bool:
        self.calls.append(("delete_room", name))
        self._maybe_fail("delete the room")
        return self.rooms.pop(name, None) is not None

    async def list_rooms(self, names: list[str] | None = None) -> list[LiveRoom]:
        return [r for r in self.rooms.values() if not names or r.name in names]

    async def room_reachable(self, name: str) -> bool:
        self.calls.append(("room_reachable", name))
        return name not in self.lost

    async def has_users(self, room: str) -> bool:
        return room in self.rooms

    async def has_agent(self, room: str) -> bool:
        return room in self.agents

    async def agent_joined_at(self, room: str) -> datetime | None:
        return datetime.now(UTC) if room in self.agents else None

    def user_token(
        self, *, room: str, identity: str, details: ParticipantDetails | None = None
    ) -> str:
        return f"token-for-{identity}-in-{room}"
