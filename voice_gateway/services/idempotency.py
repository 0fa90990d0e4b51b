"""Idempotent starts: what makes two start requests "the same", and the header's shape.

The key and the request's fingerprint are stored on the session row itself (one insert, unique
per API key), so every replica answers a retry with the same session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import timedelta

from voice_common.agent_config import AgentConfig
from voice_gateway.errors import IdempotencyConflict, IdempotencyInProgress, InvalidRequest
from voice_gateway.store.database import now
from voice_gateway.store.models import SessionRecord, SessionStatus
from voice_gateway.store.sessions import SessionStore

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
HEADER_SCHEMA = {
    "type": "string",
    "pattern": _KEY.pattern,
    "description": "A retry with the same key and request within 24 h answers the same session "
    "(a fresh token for the same room and identity); another request with it is 409.",
}
# How long a retry waits for the first request with its key to finish starting.
WAIT_FOR_FIRST_SECONDS = 15.0


def parse_key(value: str | None) -> str | None:
    """The header's value: 1-255 visible ASCII characters (a UUID is the usual choice)."""
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise InvalidRequest(f"{HEADER}: 1 to 255 visible ASCII characters, no spaces")
    return value


def fingerprint(
    *,
    agent_id: str,
    user_identity: str | None,
    config: AgentConfig,
    call: dict[str, str | None] | None = None,
) -> str:
    """Two starts are the same request when they ask for the same agent, identity and resolved
    config (and, for an outbound call, the same numbers and trunk); how to answer
    ("waitForAgent") is not part of it."""
    canonical = json.dumps(
        {
            "agentId": agent_id,
            "userIdentity": user_identity,
            "agentConfig": config.model_dump(by_alias=True, mode="json"),
            **({"call": call} if call is not None else {}),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentStarts:
    def __init__(self, store: SessionStore, window_seconds: int) -> None:
        self._store = store
        self._window = timedelta(seconds=window_seconds)

    async def earlier(self, api_key_id: str, key: str, fingerprint: str) -> SessionRecord | None:
        """The session an earlier request with this key started, once it finished starting;
        None when there is none, it is past the window, or its start failed (which let go of
        the key). The same key with another request is IdempotencyConflict."""
        record = await self._store.get_by_idempotency_key(api_key_id, key)
        if record is None:
            return None
        if now() - record.created_at > self._window:
            await self._store.release_idempotency_key(record.id)
            return None
        if record.request_fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"this {HEADER} was used with a different request; use a new key"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_FIRST_SECONDS
        current: SessionRecord | None = record
        while current is not None and current.status == SessionStatus.STARTING:
            if loop.time() > deadline:
                raise IdempotencyInProgress(
                    f"the first request with this {HEADER} is still starting; retry",
                    retry_after_seconds=1,
                )
            await asyncio.sleep(0.1)
            current = await self._store.get_by_id(record.id)
        if current is None or current.idempotency_key != key:
            return None
        return current
