"""`voicegw keys ...`."""

from __future__ import annotations

import argparse
from typing import Any


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser("keys", help="keys commands")
    parser.add_subparsers(dest="command", required=True)
