"""Opaque cursors for keyset pagination on (timestamp, id): newest first, stable under inserts."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from voice_gateway.errors import InvalidRequest
from voice_gateway.schemas import PageMeta

R = TypeVar("R")


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


def page_of(
    rows: Sequence[R], limit: int, position: Callable[[R], tuple[datetime, str | int]]
) -> tuple[Sequence[R], PageMeta]:
    """A page from up to limit + 1 rows (the extra one says that more follow), and its meta."""
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(*position(page[-1])) if more and page else None
    return page, PageMeta(count=len(page), limit=limit, next_cursor=next_cursor)
