"""`voicegw keys create|list|show|revoke|rotate`: API keys, through the gateway's admin API.

Needs VOICEGW_API_KEY set to a secret key with the scope keys:write. On a fresh install that is
the owner key the gateway was started with (VOICEGW_BOOTSTRAP_API_KEY; under `make dev`, the dev
key it prints). Create your own keys with it, then keep the owner key offline. A key's value is
printed once, by `create` and `rotate`; rotation keeps the id and stops the old value at once.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from voice_gateway.cli.client import ApiClient, CliError, emit

COLUMNS = ["id", "prefix", "name", "kind", "scopes", "agentIds", "expiresAt", "revokedAt"]
LIST_COLUMNS = COLUMNS[:6] + ["lastUsedAt", "expiresAt", "revokedAt"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d`, or plain seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) == 0:
        raise CliError(f"not a duration: {text!r} (try 30d, 12h, 15m or 90s)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def create_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name, "kind": args.kind}
    if args.scope:
        body["scopes"] = args.scope
    if args.agent:
        body["agentIds"] = args.agent
    if args.origin:
        body["allowedOrigins"] = args.origin
    if args.allow_browser:
        body["allowBrowser"] = True
    if args.expires_in:
        body["expiresAt"] = (datetime.now(UTC) + parse_duration(args.expires_in)).isoformat()
    elif args.expires_at:
        body["expiresAt"] = args.expires_at
    for field, value in (
        ("rateLimitPerMinute", args.rate_limit),
        ("rateLimitWindowSeconds", args.rate_window),
        ("maxConcurrentSessions", args.max_concurrent),
    ):
        if value is not None:
            body[field] = value
    return body


def _print_issued(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    emit(args, payload, [payload], COLUMNS)
    if not args.json:
        print(f"key: {payload['key']}")
        print("this is the only time the key is shown: store it now", file=sys.stderr)


def _create(client: ApiClient, args: argparse.Namespace) -> int:
    _print_issued(args, client.post("/v1/keys", create_body(args)))
    return 0


def _list(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.get("/v1/keys")
    rows = payload["data"]
    if args.active:
        rows = [r for r in rows if r["revokedAt"] is None]
    emit(args, payload, rows, LIST_COLUMNS)
    return 0


def _show(client: ApiClient, args: argparse.Namespace) -> int:
    emit(args, client.get(f"/v1/keys/{args.key_id}"), None, [])
    return 0


def _revoke(client: ApiClient, args: argparse.Namespace) -> int:
    payload = client.post(f"/v1/keys/{args.key_id}/revoke")
    emit(args, payload, [payload], COLUMNS)
    return 0


def _rotate(client: ApiClient, args: argparse.Namespace) -> int:
    _print_issued(args, client.post(f"/v1/keys/{args.key_id}/rotate"))
    return 0


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser(
        "keys", help="API keys (needs keys:write)", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create", help="create a key; prints its value once")
    create.add_argument("--name", required=True)
    create.add_argument("--kind", choices=["secret", "publishable"], default="secret")
    create.add_argument(
        "--scope",
        action="append",
        help="secret keys: sessions:write (default), sessions:read, keys:write, ops:write; repeat",
    )
    create.add_argument("--agent", action="append", help="publishable keys: an agent id; repeat")
    create.add_argument(
        "--origin", action="append", help="publishable keys: e.g. https://app.example.com; repeat"
    )
    create.add_argument(
        "--allow-browser",
        action="store_true",
        help="secret keys: may be sent from a web page (an ops console); else 403 from browsers",
    )
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", help="e.g. 30d, 12h, 15m")
    expiry.add_argument("--expires-at", help="ISO 8601 time, e.g. 2027-01-01T00:00:00Z")
    create.add_argument("--rate-limit", type=int, help="session starts per minute")
    create.add_argument("--rate-window", type=int, help="rate-limit window in seconds")
    create.add_argument("--max-concurrent", type=int, help="live sessions at once")
    create.set_defaults(run=_create)

    ls = commands.add_parser("list", help="every key, without values")
    ls.add_argument("--active", action="store_true", help="hide revoked keys")
    ls.set_defaults(run=_list)

    show = commands.add_parser("show", help="one key, without its value")
    show.add_argument("key_id")
    show.set_defaults(run=_show)

    revoke = commands.add_parser("revoke", help="revoke a key; it fails from the next request")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_revoke)

    rotate = commands.add_parser("rotate", help="new value, same id; the old value stops now")
    rotate.add_argument("key_id")
    rotate.set_defaults(run=_rotate)
