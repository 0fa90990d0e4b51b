"""Outbound calls: a session whose agent is dialed out to a phone through an outbound trunk.

The session is opened like any other (SessionService.open: capacity first, the row, the room, the
agent's dispatch, followed by the dispatch watch), then LiveKit's SIP service dials; the answer to
POST /v1/calls does not wait for the phone, the call is followed by an owned task: answered makes
the session active (the worker reports it, as for inbound calls, and the dial result confirms it),
busy / no answer / failure ends it with that reason. With an Idempotency-Key a retried request
answers the first request's session and dials nobody again. A trunk's address must be an allowed
SIP destination when the trunk is made and again whenever it is dialed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from dataclasses import dataclass

import structlog

from voice_common.agent_config import AgentConfig
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import ApiError, InvalidRequest, OutboundTrunkNotFound
from voice_gateway.services import idempotency
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.credentials import CredentialBox
from voice_gateway.services.keys import Principal
from voice_gateway.services.livekit_sip import CallNotConnected, LiveKitSip, OutboundTrunkSpec
from voice_gateway.services.sessions import NewSession, SessionService
from voice_gateway.sip_destinations import SipDestinations, host_of_address
from voice_gateway.store.audit import AuditEvent
from voice_gateway.store.models import (
    CallDirection,
    Channel,
    EndReason,
    OutboundTrunkRecord,
    PhoneLeg,
    SessionRecord,
)
from voice_gateway.store.phone import OutboundTrunkStore, PhoneNumberStore

log = structlog.get_logger("voice_gateway.calls")

_NOT_DIGITS = re.compile(r"[^0-9A-Za-z]")


@dataclass(frozen=True, slots=True)
class NewTrunk:
    name: str
    address: str
    transport: str
    numbers: tuple[str, ...]
    auth_username: str | None
    auth_password: str | None


@dataclass(frozen=True, slots=True)
class NewCall:
    agent_id: str
    config: AgentConfig
    to: str
    from_number: str | None
    trunk_id: str | None


@dataclass(frozen=True, slots=True)
class PlacedCall:
    record: SessionRecord
    replayed: bool  # an earlier request with the same Idempotency-Key placed it


class OutboundCalls:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        trunks: OutboundTrunkStore,
        numbers: PhoneNumberStore,
        sessions: SessionService,
        sip: LiveKitSip,
        box: CredentialBox,
        destinations: SipDestinations,
        audit: SessionAudit | None = None,
    ) -> None:
        self._settings = settings
        self._trunks = trunks
        self._numbers = numbers
        self._sessions = sessions
        self._sip = sip
        self._box = box
        self._destinations = destinations
        self._audit = audit
        self._dialing: set[asyncio.Task[None]] = set()

    async def create_trunk(self, spec: NewTrunk, *, actor: Principal) -> OutboundTrunkRecord:
        if (spec.auth_username is None) != (spec.auth_password is None):
            raise InvalidRequest("auth: give both username and password, or neither")
        self._destinations.check_address(spec.address, field="address")
        record = await self._trunks.create(
            trunk_id=f"ot_{secrets.token_hex(8)}",
            name=spec.name,
            address=spec.address,
            transport=spec.transport,
            numbers=spec.numbers,
            auth_username=spec.auth_username,
            auth_password_encrypted=self._box.seal(spec.auth_password)
            if spec.auth_password is not None
            else None,
        )
        await self._audited(AuditEvent.OUTBOUND_TRUNK_CREATED, record, actor)
        try:
            return await self._provision(record)
        except ApiError:
            log.warning("outbound_trunk_provision_deferred", trunk_id=record.id)
            return record

    async def list_trunks(self) -> list[OutboundTrunkRecord]:
        return await self._trunks.list()

    async def get_trunk(self, trunk_id: str) -> OutboundTrunkRecord:
        record = await self._trunks.get(trunk_id)
        if record is None:
            raise OutboundTrunkNotFound(f"no outbound trunk with id {trunk_id!r}")
        return record

    async def delete_trunk(self, trunk_id: str, *, actor: Principal) -> OutboundTrunkRecord:
        record = await self.get_trunk(trunk_id)
        if record.trunk_id:
            await self._sip.delete_trunk(record.trunk_id)
        await self._trunks.delete(record.id)
        await self._audited(AuditEvent.OUTBOUND_TRUNK_DELETED, record, actor)
        return record

    async def _audited(
        self, event: AuditEvent, record: OutboundTrunkRecord, actor: Principal
    ) -> None:
        if self._audit is not None:
            await self._audit.record(
                event,
                actor_key_id=actor.key_id,
                details={"trunkId": record.id, "name": record.name, "address": record.address},
            )

    async def reconcile(self) -> int:
        records = await self._trunks.list()
        existing = await self._sip.existing_outbound_trunks(
            r.trunk_id for r in records if r.trunk_id
        )
        repaired = 0
        for record in records:
            if record.trunk_id in existing:
                continue
            if not self._destinations.allows_host(host_of_address(record.address)):
                continue  # no longer an allowed destination: calls through it are refused too
            try:
                await self._provision(record)
                repaired += 1
            except ApiError as exc:
                log.warning(
                    "outbound_trunk_reconcile_failed", trunk_id=record.id, error=exc.message
                )
        return repaired

    async def place(
        self, call: NewCall, *, principal: Principal, idempotency_key: str | None = None
    ) -> PlacedCall:
        principal.require_agent(call.agent_id)
        trunk = await self.get_trunk(self._trunk_for(call))
        self._destinations.check_address(trunk.address, field="outboundTrunk")
        from_number = call.from_number or (trunk.numbers[0] if trunk.numbers else None)
        if from_number is None:
            raise InvalidRequest("from: name the number to call from (the trunk lists none)")
        if from_number not in trunk.numbers and await self._numbers.by_number(from_number) is None:
            raise InvalidRequest(f"from: {from_number} is not one of our numbers")
        if trunk.trunk_id is None:
            await self._provision(trunk)
            trunk = await self.get_trunk(trunk.id)
        identity = f"phone-{_NOT_DIGITS.sub('', call.to)[:40]}-{secrets.token_hex(3)}"
        fingerprint = None
        if idempotency_key is not None:
            fingerprint = idempotency.fingerprint(
                agent_id=call.agent_id,
                user_identity=None,
                config=call.config,
                call={"to": call.to, "from": from_number, "outboundTrunk": trunk.id},
            )
        record, replayed = await self._sessions.open_once(
            NewSession(
                agent_id=call.agent_id,
                identity=identity,
                config=call.config,
                api_key_id=principal.key_id,
                live_cap=principal.limits.max_concurrent_sessions,
                channel=Channel.PHONE,
                phone=PhoneLeg(
                    direction=CallDirection.OUTBOUND,
                    caller_number=from_number,
                    called_number=call.to,
                ),
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
        )
        if replayed or record.is_over:
            return PlacedCall(record, replayed)
        if self._audit is not None:
            await self._audit.record(
                AuditEvent.CALL_PLACED,
                actor_key_id=principal.key_id,
                key_id=principal.key_id,
                session_id=record.id,
                details={
                    "roomName": record.room_name,
                    "agentId": record.agent_id,
                    "to": call.to,
                    "from": from_number,
                    "outboundTrunk": trunk.id,
                },
            )
        task = asyncio.create_task(
            self._dial(record, trunk_id=trunk.trunk_id or "", from_number=from_number),
            name=f"dial:{record.room_name}",
        )
        self._dialing.add(task)
        task.add_done_callback(self._dialing.discard)
        return PlacedCall(record, replayed=False)

    async def aclose(self) -> None:
        for task in list(self._dialing):
            task.cancel()
        for task in list(self._dialing):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _dial(self, record: SessionRecord, *, trunk_id: str, from_number: str) -> None:
        bound = log.bind(session_id=record.id, room=record.room_name, agent_id=record.agent_id)
        assert record.phone is not None
        try:
            call_id = await self._sip.dial(
                room=record.room_name,
                trunk_id=trunk_id,
                to=record.phone.called_number,
                from_number=from_number,
                identity=record.user_identity,
                ringing_timeout=self._settings.phone_ringing_timeout_seconds,
            )
        except CallNotConnected as exc:
            bound.info("call_not_connected", reason=exc.reason.value, detail=exc.detail)
            await self._end_unanswered(record, exc)
            return
        except ApiError as exc:
            bound.warning("call_dial_failed", error=exc.message)
            await self._end_unanswered(record, CallNotConnected(EndReason.CALL_FAILED, exc.message))
            return
        bound.info("call_answered")
        with contextlib.suppress(ApiError):
            await self._sessions.note_sip_call_id(record.room_name, call_id)
        await self._sessions.answered(record.room_name)

    async def _end_unanswered(self, record: SessionRecord, exc: CallNotConnected) -> None:
        try:
            if exc.reason == EndReason.CALL_FAILED:
                await self._sessions.fail(record.room_name, reason=exc.reason, error=exc.detail)
            else:
                await self._sessions.end(record.room_name, reason=exc.reason)
        except ApiError as err:
            log.warning("call_end_failed", session_id=record.id, error=err.message)

    def _trunk_for(self, call: NewCall) -> str:
        trunk_id = call.trunk_id or self._settings.default_outbound_trunk
        if trunk_id is None:
            raise InvalidRequest(
                "outboundTrunk: name one (or set VOICEGW_DEFAULT_OUTBOUND_TRUNK on the gateway)"
            )
        return trunk_id

    async def _provision(self, record: OutboundTrunkRecord) -> OutboundTrunkRecord:
        password = (
            self._box.open(record.auth_password_encrypted)
            if record.auth_password_encrypted
            else None
        )
        livekit_id = await self._sip.create_outbound_trunk(
            OutboundTrunkSpec(
                name=record.name,
                address=record.address,
                transport=record.transport,
                numbers=record.numbers,
                auth_username=record.auth_username,
                auth_password=password,
                metadata={"outboundTrunkId": record.id},
            )
        )
        await self._trunks.set_livekit_id(record.id, livekit_id)
        return await self.get_trunk(record.id)
