"""`voicegw`: the operator's command line. It talks to a gateway's HTTP API, never to its database,
so it works the same against one local process or many replicas behind a load balancer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from voice_gateway.cli import chat, keys, phone, rooms, sessions
from voice_gateway.cli.client import ApiClient, CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegw", description=__doc__)
    parser.add_argument(
        "--url",
        help="gateway base URL (default: $VOICEGW_URL or http://127.0.0.1:8080)",
    )
    parser.add_argument("--json", action="store_true", help="print raw JSON")
    groups = parser.add_subparsers(dest="group", required=True)
    for module in (sessions, rooms, keys, phone, chat):
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = ApiClient.from_env(args.url)
    try:
        code: int = args.run(client, args)
    except CliError as exc:
        print(f"voicegw: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
