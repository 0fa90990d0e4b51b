"""`voicegw sessions list|show|end|transfer`."""

from __future__ import annotations

import argparse
from typing import Any

from voice_gateway.cli.client import ApiClient, emit

COLUMNS = ["roomName", "agentId", "userIdentity", "status", "endReason", "createdAt"]


def _list(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get(
        "/v1/sessions",
        {
            "status": args.status or "",
            "agentId": args.agent or "",
            "userIdentity": args.user or "",
            "channel": args.channel or "",
            "limit": str(args.limit),
        },
    )
    emit(args, payload, payload["data"], COLUMNS)
    return 0


def _show(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get(f"/v1/sessions/{args.room}")
    if args.transcript:
        payload["transcript"] = client.get(f"/v1/sessions/{args.room}/transcript")["segments"]
    emit(args, payload, None, [])
    return 0


def _end(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.post("/v1/sessions/end", {"roomName": args.room})
    emit(args, payload, [payload], COLUMNS + ["durationSeconds"])
    return 0


def _transfer(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.post(f"/v1/sessions/{args.room}/transfer", {"to": args.to})
    emit(args, payload, [payload], COLUMNS)
    return 0


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser("sessions", help="voice sessions")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", help="list sessions, newest first")
    ls.add_argument("--status", help="starting, ringing, active, ended or failed (comma-separated)")
    ls.add_argument("--agent", help="only this agent id")
    ls.add_argument("--user", help="only this user identity")
    ls.add_argument("--channel", choices=["web", "phone", "chat"], help="only this channel")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(run=_list)
    show = commands.add_parser("show", help="one session, by room name")
    show.add_argument("room")
    show.add_argument("--transcript", action="store_true", help="include the transcript")
    show.set_defaults(run=_show)
    end = commands.add_parser("end", help="end a session (deletes its LiveKit room)")
    end.add_argument("room")
    end.set_defaults(run=_end)
    transfer = commands.add_parser(
        "transfer", help="hand a phone caller to a person (SIP REFER); the session ends"
    )
    transfer.add_argument("room")
    transfer.add_argument("--to", required=True, help="sip:agent@pbx.example.com or tel:+15550100")
    transfer.set_defaults(run=_transfer)
