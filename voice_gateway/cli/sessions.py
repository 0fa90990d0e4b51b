"""`voicegw sessions ...`."""

from __future__ import annotations

import argparse
from typing import Any


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser("sessions", help="sessions commands")
    parser.add_subparsers(dest="command", required=True)
