"""Phone numbers callers dial, and how an inbound call becomes a session.

Why ready rooms. Our LiveKit never creates a room on a join (`room.auto_create: false`): that is
what keeps a late agent, or a client with a leftover token, from reviving a room we ended, and
keeps every room backed by a record. LiveKit's SIP service joins the room its dispatch rule names
with a token that cannot create rooms, so the room must exist before the call does. Each number
therefore has a *ready room*, recorded in our database and then created (so no room is without a
record), and a direct dispatch rule pointing at it. When a call lands there (LiveKit's
participant_joined webhook), the number moves on to a fresh ready room first (one room per call),
then the room becomes the call's session room through SessionService.open, the path every session
takes: the capacity pre-flight (no agent worker with a free slot: the session is recorded failed,
`no_agent_available`, and the room deleted, so the SIP service rejects the ringing call with 486
instead of leaving the caller with silence), the session row, the agent's dispatch (followed by
the dispatch watch, which re-dispatches once), and the session rings until the worker reports the
call answered (LiveKit answers it once the agent's greeting plays). Ready rooms allow one
participant besides agents (LiveKit does not count agents), so a second call that reaches the same
room before the rule moves on is refused with 486 Busy instead of joining a stranger's call. The
only exception is a second call from the *same* caller number in that short window: LiveKit gives
both the same identity, and the later call replaces the earlier one in the room.

LiveKit keeps trunks, rules and rooms in Redis only. `reconcile()` compares them with our rows
and rebuilds what is missing (a Redis that restarted empty), run by the reaper's leader on its
interval. A number is repaired only when it looked broken, the same way, on two passes in a row:
a number being created, or moving on to its next ready room, looks broken for a few milliseconds,
and "repairing" it then would race the request doing the work (possibly on another replica).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import (
    AgentNotFound,
    ApiError,
    InvalidRequest,
    NoAgentAvailable,
    PhoneNumberExists,
    PhoneNumberNotFound,
)
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.credentials import CredentialBox
from voice_gateway.services.keys import Principal
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.services.livekit_sip import InboundTrunkSpec, LiveKitSip
from voice_gateway.services.sessions import NewSession, SessionService
from voice_gateway.store.audit import AuditEvent
from voice_gateway.store.models import (
    CallDirection,
    Channel,
    PhoneLeg,
    PhoneNumberRecord,
    SessionRecord,
)
from voice_gateway.store.phone import NumberTaken, PhoneNumberStore
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.phone")

# The attributes LiveKit's SIP service sets on a caller's participant.
ATTR_CALLER = "sip.phoneNumber"
ATTR_CALLED = "sip.trunkPhoneNumber"
ATTR_CALL_ID = "sip.callIDFull"


@dataclass(frozen=True, slots=True)
class NewNumber:
    number: str
    agent_id: str
    allowed_addresses: tuple[str, ...]
    auth_username: str | None
    auth_password: str | None


class PhoneLines:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        catalogue: AgentCatalogue,
        store: PhoneNumberStore,
        session_store: SessionStore,
        sessions: SessionService,
        livekit: LiveKitRooms,
        sip: LiveKitSip,
        box: CredentialBox,
        audit: SessionAudit | None = None,
    ) -> None:
        self._audit = audit
        self._settings = settings
        self._catalogue = catalogue
        self._store = store
        self._session_store = session_store
        self._sessions = sessions
        self._livekit = livekit
        self._sip = sip
        self._box = box
        # Numbers that looked broken on the last reconcile pass, with what they looked like.
        self._suspects: dict[str, tuple[str | None, ...]] = {}

    async def create(self, spec: NewNumber, *, actor: Principal) -> PhoneNumberRecord:
        if self._catalogue.get(spec.agent_id) is None:
            raise AgentNotFound(f"no agent with id {spec.agent_id!r}")
        if (spec.auth_username is None) != (spec.auth_password is None):
            raise InvalidRequest("auth: give both username and password, or neither")
        try:
            record = await self._store.create(
                number_id=f"pn_{secrets.token_hex(8)}",
                number=spec.number,
                agent_id=spec.agent_id,
                allowed_addresses=spec.allowed_addresses,
                auth_username=spec.auth_username,
                auth_password_encrypted=self._box.seal(spec.auth_password)
                if spec.auth_password is not None
                else None,
                api_key_id=actor.key_id,
            )
        except NumberTaken:
            raise PhoneNumberExists(f"{spec.number} is already a phone number here") from None
        await self._audited(AuditEvent.PHONE_NUMBER_CREATED, record, actor)
        try:
            return await self._provision(record)
        except ApiError:
            # LiveKit was not there: the reconciler finishes the job when it is.
            log.warning("phone_number_provision_deferred", number_id=record.id)
            return await self._require(record.id)

    async def list(self) -> list[PhoneNumberRecord]:
        return await self._store.list()

    async def get(self, number_id: str) -> PhoneNumberRecord:
        return await self._require(number_id)

    async def delete(self, number_id: str, *, actor: Principal) -> PhoneNumberRecord:
        """Calls in progress go on; the number stops taking new ones at once."""
        record = await self._require(number_id)
        if record.dispatch_rule_id:
            await self._sip.delete_rule(record.dispatch_rule_id)
        if record.trunk_id:
            await self._sip.delete_trunk(record.trunk_id)
        await self._store.delete(record.id)
        if record.ready_room:
            await self._livekit.delete_room(record.ready_room)
        log.info("phone_number_deleted", number_id=record.id)
        await self._audited(AuditEvent.PHONE_NUMBER_DELETED, record, actor)
        return record

    async def _audited(
        self, event: AuditEvent, record: PhoneNumberRecord, actor: Principal
    ) -> None:
        if self._audit is not None:
            await self._audit.record(
                event,
                actor_key_id=actor.key_id,
                details={
                    "numberId": record.id,
                    "number": record.number,
                    "agentId": record.agent_id,
                },
            )

    async def ready_rooms(self) -> set[str]:
        return await self._store.ready_rooms()

    async def call_arrived(
        self, room: str, *, identity: str, attributes: Mapping[str, str]
    ) -> SessionRecord | None:
        """A SIP caller joined `room` (LiveKit's participant_joined webhook)."""
        number = await self._store.by_ready_room(room)
        if number is None:
            await self._same_caller_again(room, attributes)
            return None
        # Move the number on first: the window in which a second call can reach this room
        # closes as soon as the rule points elsewhere.
        if not await self._next_ready_room(number, taken=room):
            return None  # another handler (a retried webhook, another replica) took this call
        config = self._catalogue.get(number.agent_id)
        if config is None:
            raise AgentNotFound(f"no agent with id {number.agent_id!r}")
        leg = PhoneLeg(
            direction=CallDirection.INBOUND,
            caller_number=attributes.get(ATTR_CALLER, ""),
            called_number=attributes.get(ATTR_CALLED, number.number),
            sip_call_id=attributes.get(ATTR_CALL_ID),
        )
        try:
            record = await self._sessions.open(
                NewSession(
                    agent_id=number.agent_id,
                    identity=identity,
                    config=config,
                    channel=Channel.PHONE,
                    phone=leg,
                    room_name=room,
                )
            )
        except NoAgentAvailable:
            # Recorded failed, its room deleted: the SIP service rejects the call (486).
            log.warning("phone_call_refused", room=room, number_id=number.id)
            return None
        log.info("phone_call_arrived", session_id=record.id, room=room, number_id=number.id)
        return record

    async def reconcile(self) -> int:
        """Rebuilds what LiveKit lost (trunks, rules, ready rooms); answers how many numbers
        needed it."""
        numbers = await self._store.list()
        if not numbers:
            return 0
        trunks = await self._sip.existing_inbound_trunks(n.trunk_id for n in numbers if n.trunk_id)
        rules = await self._sip.rule_rooms(
            n.dispatch_rule_id for n in numbers if n.dispatch_rule_id
        )
        rooms = {r.name for r in await self._livekit.list_rooms()}
        repaired = 0
        suspects, self._suspects = self._suspects, {}
        for number in numbers:
            healthy = (
                number.trunk_id in trunks
                and number.dispatch_rule_id in rules
                and number.ready_room in rooms
                and rules[number.dispatch_rule_id or ""] == number.ready_room
            )
            if healthy:
                continue
            looks = (number.trunk_id, number.dispatch_rule_id, number.ready_room)
            if suspects.get(number.id) != looks:
                self._suspects[number.id] = looks  # broken, or busy: look again next pass
                continue
            try:
                await self._provision(
                    number,
                    has_trunk=number.trunk_id in trunks,
                    has_rule=number.dispatch_rule_id in rules,
                    has_room=number.ready_room in rooms,
                )
                repaired += 1
            except ApiError as exc:
                log.warning("phone_number_reconcile_failed", number_id=number.id, error=exc.message)
        if repaired:
            log.info("phone_numbers_reconciled", repaired=repaired)
        return repaired

    async def _provision(
        self,
        number: PhoneNumberRecord,
        *,
        has_trunk: bool = False,
        has_rule: bool = False,
        has_room: bool = False,
    ) -> PhoneNumberRecord:
        """Makes LiveKit hold the number's trunk, ready room and rule, in that order."""
        trunk_id = number.trunk_id
        if not has_trunk or trunk_id is None:
            trunk_id = await self._sip.create_inbound_trunk(self._trunk_spec(number))
            await self._store.set_livekit_ids(number.id, trunk_id=trunk_id)
        room = number.ready_room
        if not has_room or room is None:
            room = await self._new_ready_room(number, replacing=number.ready_room)
            if room is None:
                return await self._require(number.id)
        name = f"voicegw {number.number}"
        if has_rule and number.dispatch_rule_id:
            await self._sip.point_rule(
                number.dispatch_rule_id, name=name, trunk_id=trunk_id, room=room
            )
        else:
            rule_id = await self._sip.create_direct_rule(name=name, trunk_id=trunk_id, room=room)
            await self._store.set_livekit_ids(number.id, dispatch_rule_id=rule_id)
        return await self._require(number.id)

    async def _next_ready_room(self, number: PhoneNumberRecord, *, taken: str) -> bool:
        """Claims the call (False: someone else did) and points the number at a new room. A
        LiveKit failure here must not lose the call in hand: the reconciler repairs the number."""
        room = f"vgw-{number.agent_id}-{secrets.token_hex(6)}"
        if not await self._store.replace_ready_room(number.id, old=taken, new=room):
            return False
        try:
            await self._create_ready_room(number, room)
            if number.dispatch_rule_id and number.trunk_id:
                await self._sip.point_rule(
                    number.dispatch_rule_id,
                    name=f"voicegw {number.number}",
                    trunk_id=number.trunk_id,
                    room=room,
                )
        except ApiError as exc:
            log.warning("phone_next_room_failed", number_id=number.id, error=exc.message)
        return True

    async def _new_ready_room(
        self, number: PhoneNumberRecord, *, replacing: str | None
    ) -> str | None:
        """Records the number's next ready room, then creates it; None when another handler
        replaced `replacing` first."""
        room = f"vgw-{number.agent_id}-{secrets.token_hex(6)}"
        if not await self._store.replace_ready_room(number.id, old=replacing, new=room):
            return None
        await self._create_ready_room(number, room)
        return room

    async def _create_ready_room(self, number: PhoneNumberRecord, room: str) -> None:
        await self._livekit.create_room(
            room,
            metadata={"phoneNumberId": number.id},
            max_participants=1,
            empty_timeout=self._settings.phone_ready_room_ttl_seconds,
        )

    async def _same_caller_again(self, room: str, attributes: Mapping[str, str]) -> None:
        """A SIP participant joined a room that is already a session's: an outbound call's
        callee, or the same caller calling twice at once (see the module docstring). The
        session keeps the Call-ID of the call now in the room."""
        call_id = attributes.get(ATTR_CALL_ID)
        record = await self._session_store.get_by_room(room)
        if record is None or record.phone is None or not call_id:
            return
        if record.phone.sip_call_id != call_id:
            await self._session_store.set_sip_call_id(record.id, call_id)

    def _trunk_spec(self, number: PhoneNumberRecord) -> InboundTrunkSpec:
        password = (
            self._box.open(number.auth_password_encrypted)
            if number.auth_password_encrypted
            else None
        )
        return InboundTrunkSpec(
            name=f"voicegw {number.number}",
            number=number.number,
            allowed_addresses=number.allowed_addresses,
            auth_username=number.auth_username,
            auth_password=password,
            metadata={"phoneNumberId": number.id},
        )

    async def _require(self, number_id: str) -> PhoneNumberRecord:
        record = await self._store.get(number_id)
        if record is None:
            raise PhoneNumberNotFound(f"no phone number with id {number_id!r}")
        return record
