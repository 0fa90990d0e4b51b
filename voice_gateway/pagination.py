"""Opaque cursors for keyset pagination on (timestamp, id): newest first, stable under inserts."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from voice_gateway.errors import InvalidRequest


def encode_cursor(at: datetime, row_id: str | int) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, numeric_id: bool = False) -> tuple[datetime, str]:
    """The position a cursor holds; one format for every list, so a client's code is one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        if not isinstance(row_id, str) or (numeric_id and not row_id.isdigit()):
            raise TypeError(row_id)
        return datetime.fromisoformat(at), row_id
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest("cursor: not a cursor this API returned") from None
