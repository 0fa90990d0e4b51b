"""A LiveKit fake for unit tests of one module. It implements LiveKitRooms' interface; it is never
the proof that a feature works (the end-to-end tests use a real livekit-server)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.services.livekit import LiveKitRooms, LiveRoom, ParticipantDetails, RoomAgent
from voice_gateway.services.livekit_sip import InboundTrunkSpec, LiveKitSip, OutboundTrunkSpec


class FakeLiveKit(LiveKitRooms):
    def __init__(self) -> None:  # no super(): nothing to connect to
        self.rooms: dict[str, LiveRoom] = {}
        self.agents: set[str] = set()
        self.taken: set[str] = set()  # rooms whose dispatch LiveKit assigned to a worker
        self.fail_on: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.lost: set[str] = set()  # rooms whose LiveKit node died (still listed, unreachable)
        self.max_participants: dict[str, int] = {}
        self.room_agents: dict[str, RoomAgent] = {}  # the dispatch each room was created with

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail_on:
            raise LiveKitUnavailable(f"LiveKit did not answer when asked to {what}")

    async def create_room(
        self,
        name: str,
        *,
        metadata: dict[str, Any],
        max_participants: int = 8,
        empty_timeout: int | None = None,
        agent: RoomAgent | None = None,
    ) -> None:
        self.calls.append(("create_room", name))
        self._maybe_fail("create the room")
        self.rooms[name] = LiveRoom(name, f"RM_{name}", 0, 0, "")
        self.max_participants[name] = max_participants
        if agent is not None:
            self.room_agents[name] = agent

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


class FakeSip(LiveKitSip):
    """LiveKit's SIP side as a dict: trunks and direct rules; `forget()` is Redis restarting."""

    def __init__(self) -> None:  # no super(): nothing to connect to
        self.trunks: dict[str, InboundTrunkSpec | OutboundTrunkSpec] = {}
        self.rules: dict[str, tuple[str, str]] = {}
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def forget(self) -> None:
        self.trunks.clear()
        self.rules.clear()

    async def create_inbound_trunk(self, spec: InboundTrunkSpec) -> str:
        trunk_id = self._id("ST")
        self.trunks[trunk_id] = spec
        return trunk_id

    async def existing_inbound_trunks(self, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if i in self.trunks}

    async def create_outbound_trunk(self, spec: OutboundTrunkSpec) -> str:
        trunk_id = self._id("ST")
        self.trunks[trunk_id] = spec
        return trunk_id

    async def existing_outbound_trunks(self, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if i in self.trunks}

    async def delete_trunk(self, trunk_id: str) -> None:
        self.trunks.pop(trunk_id, None)

    async def create_direct_rule(self, *, name: str, trunk_id: str, room: str) -> str:
        rule_id = self._id("SDR")
        self.rules[rule_id] = (trunk_id, room)
        return rule_id

    async def point_rule(self, rule_id: str, *, name: str, trunk_id: str, room: str) -> None:
        self.rules[rule_id] = (trunk_id, room)

    async def rule_rooms(self, ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rules[i][1] for i in ids if i in self.rules}

    async def delete_rule(self, rule_id: str) -> None:
        self.rules.pop(rule_id, None)
