"""Phone numbers and outbound trunks (scope phone:write), outbound calls and transfers.

Passwords go in and never come out: answers carry `hasAuth` and the username only."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from voice_common.agent_config import TRANSFER_TARGET
from voice_gateway.errors import InvalidRequest, PayloadTooLarge, WrongKeyType
from voice_gateway.requests import authenticate, read_body
from voice_gateway.schemas import SessionView, _In, _Out
from voice_gateway.services.calls import NewCall, NewTrunk
from voice_gateway.services.keys import Principal
from voice_gateway.services.phone_lines import NewNumber
from voice_gateway.services.sessions import MAX_AGENT_CONFIG_BYTES
from voice_gateway.state import CALLS, HANDOFF, PHONE_LINES, SESSIONS

routes = web.RouteTableDef()

SCOPE = "phone:write"
# E.164-ish: what carriers send in the user part of a SIP URI.
NUMBER = r"^\+?[0-9]{3,20}$"
HOST = r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$"


class SipAuth(_In):
    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.+@-]+$")
    password: str = Field(min_length=8, max_length=128)


class CreateNumberRequest(_In):
    number: str = Field(pattern=NUMBER)
    agent_id: str = Field(min_length=1, max_length=64)
    allowed_addresses: list[str] = Field(default_factory=list, max_length=32)
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


def public(view: type[NumberView | TrunkView], record: Any) -> dict[str, Any]:
    """The record's same-named fields; of the sealed password only whether there is one."""
    data = {name: getattr(record, name) for name in view.model_fields if name != "has_auth"}
    data["has_auth"] = record.auth_password_encrypted is not None
    return view.model_validate(data).model_dump(by_alias=True, mode="json")


class NumberView(_Out):
    id: str
    number: str
    agent_id: str
    allowed_addresses: list[str]
    auth_username: str | None
    has_auth: bool
    created_at: datetime


class CreateTrunkRequest(_In):
    name: str = Field(min_length=1, max_length=128)
    address: str = Field(pattern=HOST)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    numbers: list[str] = Field(min_length=1, max_length=32)
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


class CallRequest(_In):
    agent_id: str = Field(min_length=1, max_length=64)
    to: str = Field(pattern=NUMBER)
    from_: str | None = Field(default=None, alias="from", pattern=NUMBER)
    outbound_trunk: str | None = Field(default=None, max_length=40)
    agent_config: dict[str, Any] | None = None


class TransferRequest(_In):
    to: str = Field(pattern=TRANSFER_TARGET, max_length=256)


@routes.post("/v1/phone-numbers")
async def create_number(request: web.Request) -> web.Response:
    actor = await authenticate(request, SCOPE)
    body = await read_body(request, CreateNumberRequest)
    record = await request.app[PHONE_LINES].create(body.spec(), actor=actor)
    return web.json_response(public(NumberView, record), status=web.HTTPCreated.status_code)


@routes.get("/v1/phone-numbers")
async def list_numbers(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    records = await request.app[PHONE_LINES].list()
    return web.json_response(
        {"data": [public(NumberView, r) for r in records], "meta": {"count": len(records)}}
    )


@routes.get("/v1/phone-numbers/{number_id}")
async def show_number(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    record = await request.app[PHONE_LINES].get(request.match_info["number_id"])
    return web.json_response(public(NumberView, record))


@routes.delete("/v1/phone-numbers/{number_id}")
async def delete_number(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    record = await request.app[PHONE_LINES].delete(request.match_info["number_id"])
    return web.json_response({**public(NumberView, record), "deleted": True})


@routes.post("/v1/outbound-trunks")
async def create_trunk(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    body = await read_body(request, CreateTrunkRequest)
    record = await request.app[CALLS].create_trunk(body.spec())
    return web.json_response(public(TrunkView, record), status=web.HTTPCreated.status_code)


@routes.get("/v1/outbound-trunks")
async def list_trunks(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    records = await request.app[CALLS].list_trunks()
    return web.json_response(
        {"data": [public(TrunkView, r) for r in records], "meta": {"count": len(records)}}
    )


@routes.delete("/v1/outbound-trunks/{trunk_id}")
async def delete_trunk(request: web.Request) -> web.Response:
    await authenticate(request, SCOPE)
    record = await request.app[CALLS].delete_trunk(request.match_info["trunk_id"])
    return web.json_response({**public(TrunkView, record), "deleted": True})


@routes.post("/v1/calls")
async def place_call(request: web.Request) -> web.Response:
    """Answers at once with the session `ringing`; follow it with GET /v1/sessions/{roomName}
    or the session.started / session.ended webhooks."""
    principal = await authenticate(request, "sessions:write")
    _no_browser(principal)
    await request.app[SESSIONS].check_rate(principal)
    body = await read_body(request, CallRequest)
    if body.agent_config is not None:
        size = len(json.dumps(body.agent_config).encode())
        if size > MAX_AGENT_CONFIG_BYTES:
            raise PayloadTooLarge(f"agentConfig is over {MAX_AGENT_CONFIG_BYTES} bytes")
    config = request.app[SESSIONS].resolve_agent(
        body.agent_id, body.agent_config, principal=principal
    )
    record = await request.app[CALLS].place(
        NewCall(
            agent_id=body.agent_id,
            config=config,
            to=body.to,
            from_number=body.from_,
            trunk_id=body.outbound_trunk,
        ),
        principal=principal,
    )
    return web.json_response(
        SessionView.of(record, detail=True).dump(), status=web.HTTPCreated.status_code
    )


@routes.post("/v1/sessions/{room}/transfer")
async def transfer(request: web.Request) -> web.Response:
    principal = await authenticate(request, "sessions:write")
    _no_browser(principal)
    body = await read_body(request, TransferRequest)
    record = await request.app[HANDOFF].transfer(
        request.match_info["room"], body.to, actor=principal
    )
    return web.json_response(SessionView.of(record, detail=True).dump())


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
