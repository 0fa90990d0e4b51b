"""Handing a caller to a person: a transfer (SIP REFER through LiveKit) asked for by the API, or
an escalation asked for by the agent itself when the caller wants a human.

An escalation transfers a phone caller to the agent's `escalation.transferTo` when it has one;
otherwise (and always for web sessions, which cannot be transferred) the session ends
`escalated` and integrations get a signed `session.escalated` webhook with the transcript, so a
person can follow up.
"""

from __future__ import annotations

import structlog

from voice_common.agent_config import AgentConfig
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import (
    ApiError,
    CallNotActive,
    DestinationNotAllowed,
    NotAPhoneCall,
    TransferFailed,
)
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.keys import Principal
from voice_gateway.services.livekit_sip import LiveKitSip, TransferRefused
from voice_gateway.services.outgoing_webhooks import SESSION_ESCALATED, WebhookSender
from voice_gateway.services.sessions import SessionService
from voice_gateway.sip_destinations import SipDestinations
from voice_gateway.store.audit import AuditEvent
from voice_gateway.store.models import Channel, EndReason, SessionRecord, SessionStatus
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.handoff")


class Handoff:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        sessions: SessionService,
        store: SessionStore,
        sip: LiveKitSip,
        events: WebhookSender | None,
        destinations: SipDestinations,
        audit: SessionAudit | None = None,
    ) -> None:
        self._destinations = destinations
        self._audit = audit
        self._settings = settings
        self._sessions = sessions
        self._store = store
        self._sip = sip
        self._events = events

    async def transfer(
        self, room_name: str, to: str, *, actor: Principal | None = None
    ) -> SessionRecord:
        record = await self._sessions.get(room_name)
        if actor is not None:
            actor.require_may_end(record.api_key_id)
        if record.channel != Channel.PHONE:
            raise NotAPhoneCall("only phone sessions can be transferred")
        if record.status != SessionStatus.ACTIVE:
            raise CallNotActive(f"the call is {record.status.value}, not active")
        self._destinations.check_transfer(to)
        # Noted first, so LiveKit's room_finished (the phone hangs up as soon as it has moved
        # on) cannot record the end as an ordinary hang-up.
        actor_key_id = actor.key_id if actor is not None else None
        await self._store.mark_ending(
            record.id, reason=EndReason.TRANSFERRED, error=None, key_id=actor_key_id
        )
        try:
            await self._sip.transfer(
                room=room_name,
                identity=record.user_identity,
                to=to,
                ring_seconds=self._settings.transfer_timeout_seconds,
            )
        except (TransferRefused, ApiError) as exc:
            await self._store.mark_ending(record.id, reason=None, error=None)
            detail = exc.detail if isinstance(exc, TransferRefused) else exc.message
            log.warning("transfer_failed", session_id=record.id, room=room_name, error=detail)
            raise TransferFailed(f"the transfer did not complete: {detail}") from None
        log.info("call_transferred", session_id=record.id, room=room_name)
        if self._audit is not None:
            await self._audit.record(
                AuditEvent.SESSION_TRANSFERRED,
                actor_key_id=actor_key_id,
                key_id=record.api_key_id,
                session_id=record.id,
                details={"roomName": room_name, "to": to},
            )
        return await self._sessions.end(room_name, reason=EndReason.TRANSFERRED, actor=actor)

    async def escalate(self, room_name: str) -> SessionRecord:
        record = await self._sessions.get(room_name)
        if record.is_over:
            return record
        target = AgentConfig.model_validate(record.agent_config).escalation.transfer_to
        if target and record.channel == Channel.PHONE and record.status == SessionStatus.ACTIVE:
            try:
                return await self.transfer(room_name, target)
            except (TransferFailed, DestinationNotAllowed) as exc:
                log.warning("escalation_transfer_failed", session_id=record.id, error=exc.message)
        if self._events is not None:
            await self._events.enqueue(SESSION_ESCALATED, record.id)
        log.info("session_escalated", session_id=record.id, room=room_name)
        return await self._sessions.end(room_name, reason=EndReason.ESCALATED)
