"""Idempotent starts: what makes two start requests "the same", and the header's shape.

The key and the request's fingerprint are stored on the session row itself (one insert, unique
per API key), so every replica answers a retry with the same session.
"""

from __future__ import annotations

import hashlib
import json
import re

from voice_common.agent_config import AgentConfig
from voice_gateway.errors import InvalidRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def parse_key(value: str | None) -> str | None:
    """The header's value: 1-255 visible ASCII characters (a UUID is the usual choice)."""
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise InvalidRequest(f"{HEADER}: 1 to 255 visible ASCII characters, no spaces")
    return value


def fingerprint(*, agent_id: str, user_identity: str | None, config: AgentConfig) -> str:
    """Two starts are the same request when they ask for the same agent, identity and resolved
    config; how to answer ("waitForAgent") is not part of it."""
    canonical = json.dumps(
        {
            "agentId": agent_id,
            "userIdentity": user_identity,
            "agentConfig": config.model_dump(by_alias=True, mode="json"),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
