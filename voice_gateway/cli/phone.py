"""`voicegw numbers …`, `voicegw trunks …` and `voicegw calls start …`: phone numbers callers
dial, the outbound trunks calls leave by, and calls the agent places. Numbers and trunks need a
key with phone:write; placing a call needs sessions:write. A SIP password is read from the
environment variable you name (--auth-password-env), never from the command line."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from voice_gateway.cli.client import ApiClient, CliError, emit

NUMBER_COLUMNS = ["id", "number", "agentId", "allowedAddresses", "authUsername", "createdAt"]
TRUNK_COLUMNS = ["id", "name", "address", "transport", "numbers", "authUsername"]
CALL_COLUMNS = ["roomName", "agentId", "status", "endReason", "createdAt"]


def _auth(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.auth_user:
        return None
    if not args.auth_password_env:
        raise CliError("--auth-user needs --auth-password-env NAME (the password's variable)")
    password = os.environ.get(args.auth_password_env)
    if not password:
        raise CliError(f"${args.auth_password_env} is not set")
    return {"username": args.auth_user, "password": password}


def _numbers_create(client: ApiClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "number": args.number,
        "agentId": args.agent,
        "allowedAddresses": args.allow or [],
    }
    if (auth := _auth(args)) is not None:
        body["auth"] = auth
    payload = client.post("/v1/phone-numbers", body)
    emit(args, payload, [payload], NUMBER_COLUMNS)
    return 0


def _numbers_list(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get("/v1/phone-numbers")
    emit(args, payload, payload["data"], NUMBER_COLUMNS)
    return 0


def _numbers_delete(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.delete(f"/v1/phone-numbers/{args.number_id}")
    emit(args, payload, [payload], NUMBER_COLUMNS)
    return 0


def _trunks_create(client: ApiClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "address": args.address,
        "transport": args.transport,
        "numbers": args.number,
    }
    if (auth := _auth(args)) is not None:
        body["auth"] = auth
    payload = client.post("/v1/outbound-trunks", body)
    emit(args, payload, [payload], TRUNK_COLUMNS)
    return 0


def _trunks_list(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get("/v1/outbound-trunks")
    emit(args, payload, payload["data"], TRUNK_COLUMNS)
    return 0


def _trunks_delete(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.delete(f"/v1/outbound-trunks/{args.trunk_id}")
    emit(args, payload, [payload], TRUNK_COLUMNS)
    return 0


def _calls_start(client: ApiClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"agentId": args.agent, "to": args.to}
    if args.from_number:
        body["from"] = args.from_number
    if args.trunk:
        body["outboundTrunk"] = args.trunk
    payload = client.post("/v1/calls", body)
    if args.wait:
        deadline = time.monotonic() + args.wait
        while payload["status"] == "ringing" and time.monotonic() < deadline:
            time.sleep(1)
            payload = client.get(f"/v1/sessions/{payload['roomName']}")
    emit(args, payload, [payload], CALL_COLUMNS)
    return 0


def _auth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auth-user", help="SIP digest username")
    parser.add_argument(
        "--auth-password-env", metavar="NAME", help="environment variable holding the password"
    )


def register(groups: Any) -> None:
    numbers = groups.add_parser("numbers", help="phone numbers (needs phone:write)")
    cmds = numbers.add_subparsers(dest="command", required=True)
    create = cmds.add_parser("create", help="a number callers dial, answered by an agent")
    create.add_argument("--number", required=True, help="e.g. +15550100")
    create.add_argument("--agent", required=True, help="the agent that answers")
    create.add_argument(
        "--allow", action="append", help="an address or CIDR calls may come from; repeat"
    )
    _auth_arguments(create)
    create.set_defaults(run=_numbers_create)
    cmds.add_parser("list", help="every number").set_defaults(run=_numbers_list)
    delete = cmds.add_parser("delete", help="stop taking calls on a number")
    delete.add_argument("number_id")
    delete.set_defaults(run=_numbers_delete)

    trunks = groups.add_parser("trunks", help="outbound trunks (needs phone:write)")
    cmds = trunks.add_subparsers(dest="command", required=True)
    create = cmds.add_parser("create", help="where outbound calls are sent")
    create.add_argument("--name", required=True)
    create.add_argument("--address", required=True, help="host[:port] of the carrier or PBX")
    create.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    create.add_argument("--number", action="append", required=True, help="a caller ID; repeat")
    _auth_arguments(create)
    create.set_defaults(run=_trunks_create)
    cmds.add_parser("list", help="every outbound trunk").set_defaults(run=_trunks_list)
    delete = cmds.add_parser("delete", help="remove an outbound trunk")
    delete.add_argument("trunk_id")
    delete.set_defaults(run=_trunks_delete)

    calls = groups.add_parser("calls", help="outbound calls (needs sessions:write)")
    cmds = calls.add_subparsers(dest="command", required=True)
    start = cmds.add_parser("start", help="the agent calls a phone")
    start.add_argument("--agent", required=True)
    start.add_argument("--to", required=True, help="the number to call")
    start.add_argument("--from", dest="from_number", help="our number to call from")
    start.add_argument("--trunk", help="outbound trunk id (default: the gateway's)")
    start.add_argument(
        "--wait", type=int, default=0, metavar="SECONDS", help="wait for an answer or an end"
    )
    start.set_defaults(run=_calls_start)
