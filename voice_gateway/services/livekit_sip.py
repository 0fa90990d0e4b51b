"""The only module that talks to LiveKit's SIP API: trunks, dispatch rules, dialing, transfers.
SDK errors stop here and become ours (see services/livekit.py for the room side)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from livekit import api
from livekit.protocol import sip as sip_proto

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.services.livekit import NotFoundInLiveKit, call_livekit, livekit_api
from voice_gateway.store.models import EndReason

T = TypeVar("T")

# SIP answers that mean "the person is there but did not take it", and "nobody picked up".
_BUSY = frozenset({486, 600, 603})
_NO_ANSWER = frozenset({408, 480, 487})
# How LiveKit's SIP service reports that the ringing timeout ran out.
_RANG_OUT = frozenset({"canceled", "deadline_exceeded"})
_TRANSPORTS = {
    "udp": sip_proto.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": sip_proto.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": sip_proto.SIPTransport.SIP_TRANSPORT_TLS,
}


class CallNotConnected(Exception):
    """An outbound call ended before anyone answered: busy, no answer, or failed."""

    def __init__(self, reason: EndReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class TransferRefused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class InboundTrunkSpec:
    name: str
    number: str
    allowed_addresses: tuple[str, ...]
    auth_username: str | None
    auth_password: str | None
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class OutboundTrunkSpec:
    name: str
    address: str
    transport: str
    numbers: tuple[str, ...]
    auth_username: str | None
    auth_password: str | None
    metadata: dict[str, str]


class LiveKitSip:
    def __init__(self, settings: GatewaySettings, http: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._api = livekit_api(settings, http)

    async def create_inbound_trunk(self, spec: InboundTrunkSpec) -> str:
        trunk = api.SIPInboundTrunkInfo(
            name=spec.name,
            metadata=json.dumps(spec.metadata),
            numbers=[spec.number],
            allowed_addresses=list(spec.allowed_addresses),
            auth_username=spec.auth_username or "",
            auth_password=spec.auth_password or "",
        )
        created = await self._call(
            "create the inbound trunk",
            self._api.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk)),
        )
        return str(created.sip_trunk_id)

    async def existing_inbound_trunks(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        listed = await self._call(
            "list inbound trunks",
            self._api.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest(trunk_ids=wanted)),
        )
        return {t.sip_trunk_id for t in listed.items if t.sip_trunk_id}

    async def create_outbound_trunk(self, spec: OutboundTrunkSpec) -> str:
        trunk = api.SIPOutboundTrunkInfo(
            name=spec.name,
            metadata=json.dumps(spec.metadata),
            address=spec.address,
            transport=_TRANSPORTS[spec.transport],
            numbers=list(spec.numbers),
            auth_username=spec.auth_username or "",
            auth_password=spec.auth_password or "",
        )
        created = await self._call(
            "create the outbound trunk",
            self._api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk)),
        )
        return str(created.sip_trunk_id)

    async def existing_outbound_trunks(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        listed = await self._call(
            "list outbound trunks",
            self._api.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest(trunk_ids=wanted)),
        )
        return {t.sip_trunk_id for t in listed.items if t.sip_trunk_id}

    async def delete_trunk(self, trunk_id: str) -> None:
        try:
            await self._call(
                "delete the trunk",
                self._api.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id)),
            )
        except NotFoundInLiveKit:
            pass

    async def create_direct_rule(self, *, name: str, trunk_id: str, room: str) -> str:
        created = await self._call(
            "create the dispatch rule",
            self._api.sip.create_dispatch_rule(
                api.CreateSIPDispatchRuleRequest(dispatch_rule=_direct_rule(name, trunk_id, room))
            ),
        )
        return str(created.sip_dispatch_rule_id)

    async def point_rule(self, rule_id: str, *, name: str, trunk_id: str, room: str) -> None:
        """The number's next call lands in `room`."""
        await self._call(
            "update the dispatch rule",
            self._api.sip.update_dispatch_rule(rule_id, _direct_rule(name, trunk_id, room)),
        )

    async def rule_rooms(self, ids: Iterable[str]) -> dict[str, str]:
        """Existing rules among `ids`, each with the room its calls go to."""
        wanted = list(ids)
        if not wanted:
            return {}
        listed = await self._call(
            "list dispatch rules",
            self._api.sip.list_dispatch_rule(
                api.ListSIPDispatchRuleRequest(dispatch_rule_ids=wanted)
            ),
        )
        return {
            r.sip_dispatch_rule_id: r.rule.dispatch_rule_direct.room_name
            for r in listed.items
            if r.sip_dispatch_rule_id
        }

    async def delete_rule(self, rule_id: str) -> None:
        try:
            await self._call(
                "delete the dispatch rule",
                self._api.sip.delete_dispatch_rule(
                    api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
                ),
            )
        except NotFoundInLiveKit:
            pass

    async def dial(
        self,
        *,
        room: str,
        trunk_id: str,
        to: str,
        from_number: str,
        identity: str,
        ringing_timeout: int,
    ) -> str:
        """Places the call and returns once it is answered, with its SIP Call-ID; raises
        CallNotConnected when it is not (busy, no answer, failed)."""
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=to,
            sip_number=from_number,
            room_name=room,
            participant_identity=identity,
            participant_name=f"Phone {to}",
            wait_until_answered=True,
        )
        request.ringing_timeout.seconds = ringing_timeout
        try:
            info = await asyncio.wait_for(
                self._api.sip.create_sip_participant(request), ringing_timeout + 15
            )
        except api.SipCallError as exc:
            code = exc.sip_status_code
            detail = f"SIP {code} {exc.sip_status or ''}".strip() if code else exc.message
            if code in _BUSY:
                raise CallNotConnected(EndReason.BUSY, detail) from None
            if code in _NO_ANSWER or exc.code in _RANG_OUT:
                raise CallNotConnected(EndReason.NO_ANSWER, detail) from None
            raise CallNotConnected(EndReason.CALL_FAILED, detail) from None
        except api.TwirpError as exc:
            if exc.code in _RANG_OUT:
                raise CallNotConnected(EndReason.NO_ANSWER, exc.message) from None
            raise CallNotConnected(EndReason.CALL_FAILED, f"{exc.code}: {exc.message}") from None
        except TimeoutError:
            raise CallNotConnected(EndReason.NO_ANSWER, "nobody answered in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit did not answer when asked to place a call ({type(exc).__name__})"
            ) from None
        return str(info.sip_call_id)

    async def transfer(self, *, room: str, identity: str, to: str, ring_seconds: int) -> None:
        """SIP REFER through LiveKit; returns when the transfer target answered."""
        request = api.TransferSIPParticipantRequest(
            room_name=room, participant_identity=identity, transfer_to=to
        )
        request.ringing_timeout.seconds = ring_seconds
        try:
            await asyncio.wait_for(
                self._api.sip.transfer_sip_participant(request), ring_seconds + 15
            )
        except api.TwirpError as exc:
            raise TransferRefused(str(exc)) from None
        except TimeoutError:
            raise TransferRefused("the transfer target did not answer in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit did not answer when asked to transfer a call ({type(exc).__name__})"
            ) from None

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        return await call_livekit(what, call, self._settings.livekit_timeout_seconds)


def _direct_rule(name: str, trunk_id: str, room: str) -> api.SIPDispatchRuleInfo:
    return api.SIPDispatchRuleInfo(
        name=name,
        trunk_ids=[trunk_id],
        rule=api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name=room)),
    )
