"""Phone numbers and outbound trunks (scope phone:write), outbound calls and transfers.

Passwords go in and never come out: answers carry `hasAuth` and the username only. Calls and
transfers make LiveKit's SIP service send traffic; where it may go is the gateway's
VOICEGW_SIP_ALLOWED_DESTINATIONS (voice_gateway/sip_destinations.py)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from voice_common.agent_config import TRANSFER_TARGET
from voice_gateway.errors import (
    AgentNotFound,
    CallNotActive,
    DestinationNotAllowed,
    IdempotencyConflict,
    IdempotencyInProgress,
    InvalidRequest,
    LiveKitUnavailable,
    NoAgentAvailable,
    NotAPhoneCall,
    OutboundTrunkNotFound,
    PhoneNumberExists,
    PhoneNumberNotFound,
    RateLimited,
    SessionNotFound,
    TransferFailed,
    WrongKeyType,
)
from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.schemas import ROOM_PARAM, CountMeta, SessionView, _In, _Out
from voice_gateway.services import idempotency
from voice_gateway.services.calls import NewCall, NewTrunk
from voice_gateway.services.keys import Principal
from voice_gateway.services.phone_lines import NewNumber
from voice_gateway.state import CALLS, HANDOFF, PHONE_LINES, SESSIONS
from voice_gateway.store.models import OutboundTrunkRecord, PhoneNumberRecord

routes = ApiRoutes()

SCOPE = "phone:write"
# E.164-ish: what carriers send in the user part of a SIP URI.
NUMBER = r"^\+?[0-9]{3,20}$"
HOST = r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$"
ID_PARAM = {"type": "string", "minLength": 1, "maxLength": 40}


class SipAuth(_In):
    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.+@-]+$")
    password: str = Field(min_length=8, max_length=128)


class CreateNumberRequest(_In):
    number: str = Field(pattern=NUMBER, examples=["+15550100"])
    agent_id: str = Field(min_length=1, max_length=64, examples=["demo"])
    allowed_addresses: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="IP addresses or CIDR networks calls may come from; empty: any",
    )
    auth: SipAuth | None = None

    def spec(self) -> NewNumber:
        for address in self.allowed_addresses:
            _check_address(address)
        return NewNumber(
            number=self.number,
            agent_id=self.agent_id,
            allowed_addresses=tuple(self.allowed_addresses),
            auth_username=self.auth.username if self.auth else None,
            auth_password=self.auth.password if self.auth else None,
        )


class NumberView(_Out):
    id: str
    number: str
    agent_id: str
    allowed_addresses: list[str]
    auth_username: str | None
    has_auth: bool = Field(description="Whether calls must authenticate (the password is kept)")
    created_at: datetime

    @classmethod
    def of(cls, r: PhoneNumberRecord) -> NumberView:
        return cls.model_validate(_public(cls, r))


class DeletedNumberView(NumberView):
    deleted: bool


class NumberList(_Out):
    data: list[NumberView]
    meta: CountMeta


class CreateTrunkRequest(_In):
    name: str = Field(min_length=1, max_length=128)
    address: str = Field(pattern=HOST, description="host[:port] of the carrier or PBX")
    transport: Literal["udp", "tcp", "tls"] = "udp"
    numbers: list[str] = Field(min_length=1, max_length=32, description="Caller IDs it may use")
    auth: SipAuth | None = None

    def spec(self) -> NewTrunk:
        for n in self.numbers:
            _check_number("numbers", n)
        return NewTrunk(
            name=self.name,
            address=self.address,
            transport=self.transport,
            numbers=tuple(self.numbers),
            auth_username=self.auth.username if self.auth else None,
            auth_password=self.auth.password if self.auth else None,
        )


class TrunkView(_Out):
    id: str
    name: str
    address: str
    transport: str
    numbers: list[str]
    auth_username: str | None
    has_auth: bool
    created_at: datetime

    @classmethod
    def of(cls, r: OutboundTrunkRecord) -> TrunkView:
        return cls.model_validate(_public(cls, r))


class DeletedTrunkView(TrunkView):
    deleted: bool


class TrunkList(_Out):
    data: list[TrunkView]
    meta: CountMeta


class CallRequest(_In):
    agent_id: str = Field(min_length=1, max_length=64)
    to: str = Field(pattern=NUMBER)
    from_: str | None = Field(default=None, alias="from", pattern=NUMBER)
    outbound_trunk: str | None = Field(default=None, max_length=40)
    agent_config: dict[str, Any] | None = None


class TransferRequest(_In):
    to: str = Field(pattern=TRANSFER_TARGET, max_length=256, examples=["sip:desk@pbx.example"])


def _public(view: type[NumberView | TrunkView], record: Any) -> dict[str, Any]:
    """The record's same-named fields; of the sealed password only whether there is one."""
    data = {name: getattr(record, name) for name in view.model_fields if name != "has_auth"}
    data["has_auth"] = record.auth_password_encrypted is not None
    return data


CREATE_NUMBER = Operation(
    method="POST",
    path="/v1/phone-numbers",
    summary="A number callers dial, answered by an agent (LiveKit inbound trunk and rule made)",
    tag="phone",
    scope=SCOPE,
    body=CreateNumberRequest,
    responses={201: NumberView},
    errors=(AgentNotFound, PhoneNumberExists),
)
LIST_NUMBERS = Operation(
    method="GET",
    path="/v1/phone-numbers",
    summary="Every phone number",
    tag="phone",
    scope=SCOPE,
    responses={200: NumberList},
)
SHOW_NUMBER = Operation(
    method="GET",
    path="/v1/phone-numbers/{number_id}",
    summary="One phone number",
    tag="phone",
    scope=SCOPE,
    path_params={"number_id": ID_PARAM},
    responses={200: NumberView},
    errors=(PhoneNumberNotFound,),
)
DELETE_NUMBER = Operation(
    method="DELETE",
    path="/v1/phone-numbers/{number_id}",
    summary="Stop taking calls on a number (calls in progress go on)",
    tag="phone",
    scope=SCOPE,
    path_params={"number_id": ID_PARAM},
    responses={200: DeletedNumberView},
    errors=(PhoneNumberNotFound, LiveKitUnavailable),
)
CREATE_TRUNK = Operation(
    method="POST",
    path="/v1/outbound-trunks",
    summary="Where outbound calls are sent (its address must be an allowed SIP destination)",
    tag="phone",
    scope=SCOPE,
    body=CreateTrunkRequest,
    responses={201: TrunkView},
    errors=(DestinationNotAllowed,),
)
LIST_TRUNKS = Operation(
    method="GET",
    path="/v1/outbound-trunks",
    summary="Every outbound trunk",
    tag="phone",
    scope=SCOPE,
    responses={200: TrunkList},
)
DELETE_TRUNK = Operation(
    method="DELETE",
    path="/v1/outbound-trunks/{trunk_id}",
    summary="Remove an outbound trunk",
    tag="phone",
    scope=SCOPE,
    path_params={"trunk_id": ID_PARAM},
    responses={200: DeletedTrunkView},
    errors=(OutboundTrunkNotFound, LiveKitUnavailable),
)
PLACE_CALL = Operation(
    method="POST",
    path="/v1/calls",
    summary="The agent calls a phone: the session answers at once, `ringing`; then `active` "
    "when answered, or ended busy / no_answer / call_failed",
    tag="phone",
    scope="sessions:write",
    body=CallRequest,
    responses={201: SessionView},
    errors=(
        WrongKeyType,
        AgentNotFound,
        OutboundTrunkNotFound,
        DestinationNotAllowed,
        RateLimited,
        IdempotencyConflict,
        IdempotencyInProgress,
        LiveKitUnavailable,
        NoAgentAvailable,
    ),
    header_params={idempotency.HEADER: idempotency.HEADER_SCHEMA},
    optional_headers={
        201: {idempotency.REPLAYED_HEADER: "`true` when an earlier request with this key made it"}
    },
)
TRANSFER = Operation(
    method="POST",
    path="/v1/sessions/{room}/transfer",
    summary="Hand a phone caller to a person (SIP REFER); the session ends `transferred`",
    tag="phone",
    scope="sessions:write",
    path_params={"room": ROOM_PARAM},
    body=TransferRequest,
    responses={200: SessionView},
    errors=(
        WrongKeyType,
        SessionNotFound,
        NotAPhoneCall,
        CallNotActive,
        DestinationNotAllowed,
        TransferFailed,
        LiveKitUnavailable,
    ),
)


@routes.operation(CREATE_NUMBER)
async def create_number(request: web.Request) -> web.Response:
    actor = await CREATE_NUMBER.authenticate(request)
    body = await CREATE_NUMBER.read_body(request)
    record = await request.app[PHONE_LINES].create(body.spec(), actor=actor)
    return CREATE_NUMBER.reply(NumberView.of(record))


@routes.operation(LIST_NUMBERS)
async def list_numbers(request: web.Request) -> web.Response:
    await LIST_NUMBERS.authenticate(request)
    records = await request.app[PHONE_LINES].list()
    return LIST_NUMBERS.reply(
        NumberList(data=[NumberView.of(r) for r in records], meta=CountMeta(count=len(records)))
    )


@routes.operation(SHOW_NUMBER)
async def show_number(request: web.Request) -> web.Response:
    await SHOW_NUMBER.authenticate(request)
    record = await request.app[PHONE_LINES].get(request.match_info["number_id"])
    return SHOW_NUMBER.reply(NumberView.of(record))


@routes.operation(DELETE_NUMBER)
async def delete_number(request: web.Request) -> web.Response:
    actor = await DELETE_NUMBER.authenticate(request)
    record = await request.app[PHONE_LINES].delete(request.match_info["number_id"], actor=actor)
    return DELETE_NUMBER.reply(
        DeletedNumberView(**NumberView.of(record).model_dump(), deleted=True)
    )


@routes.operation(CREATE_TRUNK)
async def create_trunk(request: web.Request) -> web.Response:
    actor = await CREATE_TRUNK.authenticate(request)
    body = await CREATE_TRUNK.read_body(request)
    record = await request.app[CALLS].create_trunk(body.spec(), actor=actor)
    return CREATE_TRUNK.reply(TrunkView.of(record))


@routes.operation(LIST_TRUNKS)
async def list_trunks(request: web.Request) -> web.Response:
    await LIST_TRUNKS.authenticate(request)
    records = await request.app[CALLS].list_trunks()
    return LIST_TRUNKS.reply(
        TrunkList(data=[TrunkView.of(r) for r in records], meta=CountMeta(count=len(records)))
    )


@routes.operation(DELETE_TRUNK)
async def delete_trunk(request: web.Request) -> web.Response:
    actor = await DELETE_TRUNK.authenticate(request)
    record = await request.app[CALLS].delete_trunk(request.match_info["trunk_id"], actor=actor)
    return DELETE_TRUNK.reply(DeletedTrunkView(**TrunkView.of(record).model_dump(), deleted=True))


@routes.operation(PLACE_CALL)
async def place_call(request: web.Request) -> web.Response:
    """Answers at once with the session `ringing`; follow it with GET /v1/sessions/{roomName}
    or the session.started / session.ended webhooks."""
    principal = await PLACE_CALL.authenticate(request)
    _no_browser(principal)
    sessions = request.app[SESSIONS]
    await sessions.check_rate(principal)
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await PLACE_CALL.read_body(request)
    config = sessions.resolve_requested(body.agent_id, body.agent_config, principal=principal)
    placed = await request.app[CALLS].place(
        NewCall(
            agent_id=body.agent_id,
            config=config,
            to=body.to,
            from_number=body.from_,
            trunk_id=body.outbound_trunk,
        ),
        principal=principal,
        idempotency_key=key,
    )
    replayed = {idempotency.REPLAYED_HEADER: "true"} if placed.replayed else None
    return PLACE_CALL.reply(SessionView.of(placed.record, detail=True), headers=replayed)


@routes.operation(TRANSFER)
async def transfer(request: web.Request) -> web.Response:
    principal = await TRANSFER.authenticate(request)
    _no_browser(principal)
    body = await TRANSFER.read_body(request)
    record = await request.app[HANDOFF].transfer(
        request.match_info["room"], body.to, actor=principal
    )
    return TRANSFER.reply(SessionView.of(record, detail=True))


def _no_browser(principal: Principal) -> None:
    """A publishable key ships in web pages: it must never dial phones (toll fraud) or move
    calls, even though it may start web sessions."""
    if principal.publishable:
        raise WrongKeyType("phone calls need a secret key")


def _check_number(field: str, value: str) -> None:
    if not re.fullmatch(NUMBER, value):
        raise InvalidRequest(f"{field}: {value!r} is not a phone number like +15550100")


def _check_address(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidRequest(
            f"allowedAddresses: {value!r} is not an IP address or network (CIDR)"
        ) from None
