"""Who is calling: API key values, their hashes, and the principal a valid key stands for."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from voice_gateway.errors import InsufficientScope, InvalidApiKey
from voice_gateway.store.database import now
from voice_gateway.store.keys import KeyStore
from voice_gateway.store.models import ApiKeyRecord

SECRET_KIND = "secret"
PUBLISHABLE_KIND = "publishable"
ALL_SCOPES = ("sessions:write", "sessions:read", "keys:write", "ops:write")
_KIND_TAG = {SECRET_KIND: "sk", PUBLISHABLE_KIND: "pk"}
PREFIX_LEN = 16


def hash_key(value: str) -> str:
    """Keys carry 256 bits of entropy, so one SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_key_value(kind: str) -> str:
    return f"vgw_{_KIND_TAG[kind]}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    kind: str
    scopes: frozenset[str]
    agent_ids: frozenset[str]
    allowed_origins: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise InsufficientScope(f"this key lacks the scope {scope!r}")


class KeyService:
    def __init__(self, store: KeyStore) -> None:
        self._store = store

    async def authenticate(self, value: str) -> Principal:
        digest = hash_key(value)
        record = await self._store.get_by_hash(digest)
        # compare_digest keeps the check constant-time even though the lookup is by hash.
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise InvalidApiKey("the API key is not valid")
        if record.revoked_at is not None:
            raise InvalidApiKey("the API key was revoked")
        if record.expires_at is not None and record.expires_at <= now():
            raise InvalidApiKey("the API key has expired")
        await self._store.touch(record.id)
        return _principal(record)

    async def ensure_bootstrap_key(self, value: str) -> None:
        """Makes the configured first key an owner key, once; restarts find it already there."""
        digest = hash_key(value)
        if await self._store.get_by_hash(digest) is not None:
            return
        await self._store.insert(
            key_id=f"key_{secrets.token_hex(6)}",
            prefix=value[:PREFIX_LEN],
            key_hash=digest,
            kind=SECRET_KIND,
            name="bootstrap",
            scopes=ALL_SCOPES,
        )


def _principal(record: ApiKeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        kind=record.kind,
        scopes=frozenset(record.scopes),
        agent_ids=frozenset(record.agent_ids),
        allowed_origins=frozenset(record.allowed_origins),
    )
