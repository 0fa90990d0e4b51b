"""`voicegw rooms list|end|reap`: LiveKit rooms as ops sees them, through the gateway."""

from __future__ import annotations

import argparse
from typing import Any

from voice_gateway.cli.client import ApiClient, emit


def _list(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get("/v1/ops/rooms")
    rows = [_row(room) for room in payload["data"]]
    columns = ["roomName", "numParticipants", "status", "agentId", "orphan", "overdue", "createdAt"]
    emit(args, payload, rows, columns)
    return 0


def _row(room: dict[str, Any]) -> dict[str, Any]:
    """A phone number's ready room has no session yet: it is shown waiting for its number."""
    session, line = room["session"] or {}, room.get("phoneLine") or {}
    status = session.get("status") or (f"ready {line['number']}" if line else None)
    return {**room, "status": status, "agentId": session.get("agentId") or line.get("agentId")}


def _end(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.post(f"/v1/ops/rooms/{args.room}/end")
    emit(args, payload, [payload], ["roomName", "deleted"])
    return 0


def _reap(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.post("/v1/ops/reap", {"dryRun": args.dry_run})
    emit(args, payload, payload["actions"], ["roomName", "sessionId", "reason", "action"])
    return 0


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser("rooms", help="LiveKit rooms (ops)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every room with its session state").set_defaults(run=_list)
    end = commands.add_parser("end", help="end any room, with or without a session")
    end.add_argument("room")
    end.set_defaults(run=_end)
    reap = commands.add_parser("reap", help="run one reaper pass")
    reap.add_argument("--dry-run", action="store_true", help="only show what would be ended")
    reap.set_defaults(run=_reap)
