"""Opaque cursors for keyset pagination on (timestamp, id): newest first, stable under inserts."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TypeVar

from voice_gateway.errors import InvalidRequest

T = TypeVar("T", str, int)


def encode_cursor(at: datetime, row_id: str | int) -> str:
    raw = json.dumps([at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, id_type: type[T]) -> tuple[datetime, T]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        if type(row_id) is not id_type:
            raise TypeError(row_id)
        return datetime.fromisoformat(at), row_id
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest("cursor: not a cursor this API returned") from None
