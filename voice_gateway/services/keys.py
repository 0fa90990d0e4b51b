"""Who is calling: API key values, their hashes, and the principal a valid key stands for.

A key is `vgw_sk_…` (secret: scoped, for servers) or `vgw_pk_…` (publishable: may ship in a web
page, so it only starts sessions for its agents from its origins, and ends the sessions it started).
The value is 256 random bits, shown once at creation or rotation; only its SHA-256 is stored, with
a short id (`key_…`) and the first characters as a visible prefix. Rotation keeps the id, so the
key's sessions, limits and audit trail stay attached; the old value stops when the rotation commits.

The first owner key of a fresh install is the gateway's VOICEGW_BOOTSTRAP_API_KEY: at start it is
stored (hashed) as a secret key with every scope and no limits, unless that value is already known
(also when it was revoked or rotated away: a restart never brings a retired value back).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog
from pydantic.alias_generators import to_camel

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import (
    InsufficientScope,
    InvalidApiKey,
    InvalidRequest,
    KeyNotFound,
    KeyRevoked,
    OriginNotAllowed,
    SecretKeyInBrowser,
    WrongKeyType,
)
from voice_gateway.services.audit import audit_entry
from voice_gateway.services.origins import normalize_origin, origin_allowed
from voice_gateway.store.audit import KEY_CREATED, KEY_REVOKED, KEY_ROTATED
from voice_gateway.store.database import now
from voice_gateway.store.keys import KeyStore
from voice_gateway.store.models import ApiKeyRecord

log = structlog.get_logger("voice_gateway.keys")

SECRET_KIND = "secret"
PUBLISHABLE_KIND = "publishable"
KINDS = (SECRET_KIND, PUBLISHABLE_KIND)
ALL_SCOPES = ("sessions:write", "sessions:read", "keys:write", "ops:write", "phone:write")
PUBLISHABLE_SCOPES = ("sessions:write",)
DEFAULT_SECRET_SCOPES = ("sessions:write",)
_KIND_TAG = {SECRET_KIND: "sk", PUBLISHABLE_KIND: "pk"}
TOUCH_EVERY = 60.0
PREFIX_LEN = 16
KEY_FORMAT = re.compile(r"vgw_(sk|pk)_[A-Za-z0-9_-]{43}")


def hash_key(value: str) -> str:
    """Keys carry 256 bits of entropy, so one SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_key_value(kind: str) -> str:
    return f"vgw_{_KIND_TAG[kind]}_{secrets.token_urlsafe(32)}"


def new_key_id() -> str:
    return f"key_{secrets.token_hex(8)}"


def key_prefix(value: str) -> str:
    """What lists show to tell keys apart: the kind tag and a few characters, far from usable.
    A bootstrap value may be any string, so of one not made here a quarter at most is shown."""
    if KEY_FORMAT.fullmatch(value):
        return value[:PREFIX_LEN]
    return value[: min(PREFIX_LEN, len(value) // 4)]


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """None means not limited."""

    rate_limit_per_minute: int | None = None
    rate_limit_window_seconds: int | None = None
    max_concurrent_sessions: int | None = None


def default_limits(settings: GatewaySettings) -> KeyLimits:
    return KeyLimits(
        rate_limit_per_minute=settings.key_rate_limit_per_minute,
        rate_limit_window_seconds=settings.key_rate_limit_window_seconds,
        max_concurrent_sessions=settings.key_max_concurrent_sessions,
    )


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    kind: str
    scopes: frozenset[str]
    agent_ids: frozenset[str]
    allowed_origins: frozenset[str]
    limits: KeyLimits = KeyLimits()
    allow_browser: bool = False

    @property
    def publishable(self) -> bool:
        return self.kind == PUBLISHABLE_KIND

    def require_not_in_browser(self, origin: str | None) -> None:
        """Browsers send an Origin on every cross-origin request and on every POST: a secret key
        arriving with one has been put in a web page, where anyone can read it."""
        if origin and not self.publishable and not self.allow_browser:
            raise SecretKeyInBrowser(
                "a secret key must not be used from a browser, where anyone can read it: "
                "use a publishable key (kind: publishable) bound to your agents and origins"
            )

    def require(self, scope: str) -> None:
        if self.publishable and scope not in PUBLISHABLE_SCOPES:
            raise WrongKeyType("a publishable key only starts and ends sessions; use a secret key")
        if scope not in self.scopes:
            raise InsufficientScope(f"this key lacks the scope {scope!r}")

    def require_origin(self, origin: str | None) -> None:
        if self.publishable and not origin_allowed(origin, self.allowed_origins):
            raise OriginNotAllowed("this key may not be used from this origin")

    def require_agent(self, agent_id: str) -> None:
        if self.publishable and agent_id not in self.agent_ids:
            raise InsufficientScope(f"this key may not start sessions for agent {agent_id!r}")

    def require_overrides(self, fields: Iterable[str], allowed: Collection[str]) -> None:
        """Which agentConfig fields a browser may set is the agent's choice (the catalogue's
        publishableOverrides); a secret key may set any."""
        if not self.publishable:
            return
        for name in fields:
            if to_camel(name) not in allowed:
                raise InsufficientScope(
                    f"agentConfig.{name} may not be set with a publishable key for this agent"
                )

    def require_may_end(self, started_by: str | None) -> None:
        if self.publishable and started_by != self.key_id:
            raise InsufficientScope("a publishable key may only end the sessions it started")

    def require_own_session(self, started_by: str | None) -> None:
        """A page's key reads and writes only the chat sessions it started."""
        if self.publishable and started_by != self.key_id:
            raise InsufficientScope("a publishable key may only use the sessions it started")


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    kind: str = SECRET_KIND
    scopes: tuple[str, ...] | None = None
    agent_ids: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    expires_at: datetime | None = None
    limits: KeyLimits = KeyLimits()
    allow_browser: bool = False


@dataclass(frozen=True, slots=True)
class IssuedKey:
    record: ApiKeyRecord
    value: str = field(repr=False)  # the only time the value exists outside the caller's hands


def check_new_key(
    spec: NewKey, *, actor: Principal, known_agents: Collection[str] | None, at: datetime
) -> NewKey:
    """The spec with scopes resolved and origins canonical, or the first rule it breaks."""
    name = spec.name.strip()
    if not name:
        raise InvalidRequest("name: must not be blank")
    if spec.kind not in KINDS:
        raise InvalidRequest(f"kind: must be one of {list(KINDS)}")
    if spec.kind == SECRET_KIND:
        scopes = _check_scopes(spec.scopes)
        if spec.agent_ids:
            raise InvalidRequest("agentIds: only publishable keys are bound to agents")
        if spec.allowed_origins:
            raise InvalidRequest("allowedOrigins: only publishable keys are bound to origins")
        origins: tuple[str, ...] = ()
    else:
        if spec.allow_browser:
            raise InvalidRequest("allowBrowser: publishable keys are made for browsers already")
        if spec.scopes is not None and tuple(spec.scopes) != PUBLISHABLE_SCOPES:
            raise InvalidRequest(f"scopes: a publishable key has just {list(PUBLISHABLE_SCOPES)}")
        scopes = PUBLISHABLE_SCOPES
        if not spec.agent_ids:
            raise InvalidRequest("agentIds: a publishable key needs at least one agent")
        for agent_id in spec.agent_ids:
            if known_agents is not None and agent_id not in known_agents:
                raise InvalidRequest(f"agentIds: no agent with id {agent_id!r}")
        if not spec.allowed_origins:
            raise InvalidRequest("allowedOrigins: a publishable key needs at least one origin")
        origins = tuple(dict.fromkeys(_check_origin(o) for o in spec.allowed_origins))
    expires_at = spec.expires_at
    if expires_at is not None:
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if expires_at <= at:
            raise InvalidRequest("expiresAt: must be in the future")
    for scope in scopes:
        if scope not in actor.scopes:
            raise InsufficientScope(f"this key cannot grant the scope {scope!r}: it lacks it")
    return replace(
        spec,
        name=name,
        scopes=scopes,
        agent_ids=tuple(dict.fromkeys(spec.agent_ids)),
        allowed_origins=origins,
        expires_at=expires_at,
    )


def _check_scopes(requested: tuple[str, ...] | None) -> tuple[str, ...]:
    if requested is None:
        return DEFAULT_SECRET_SCOPES
    if not requested:
        raise InvalidRequest("scopes: give at least one scope")
    for scope in requested:
        if scope not in ALL_SCOPES:
            raise InvalidRequest(f"scopes: unknown scope {scope!r}; known: {list(ALL_SCOPES)}")
    return tuple(dict.fromkeys(requested))


def _check_origin(value: str) -> str:
    origin = normalize_origin(value, allow_wildcard=True)
    if origin is None:
        raise InvalidRequest(
            f"allowedOrigins: {value!r} is not an origin like https://app.example.com"
        )
    return origin


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        *,
        defaults: KeyLimits = KeyLimits(),
        known_agents: Collection[str] | None = None,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._store = store
        self._defaults = defaults
        self._known_agents = known_agents
        self._last_touch: dict[str, float] = {}
        # digest -> (record, when read): a start's key lookup is a store read on every request
        # otherwise. A revocation or rotation through this replica drops the entry at once; one
        # made through another replica takes effect here within `cache_seconds`.
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ApiKeyRecord, float]] = {}

    async def _lookup(self, digest: str) -> ApiKeyRecord | None:
        if self._cache_seconds <= 0:
            return await self._store.get_by_hash(digest)
        hit = self._cache.get(digest)
        if hit is not None and self._clock() - hit[1] < self._cache_seconds:
            return hit[0]
        record = await self._store.get_by_hash(digest)
        if record is not None:  # unknown values are not kept: a flood of them cannot grow this
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (record, self._clock())
        return record

    def _forget(self, key_id: str) -> None:
        for digest in [d for d, (r, _) in self._cache.items() if r.id == key_id]:
            del self._cache[digest]

    async def authenticate(self, value: str) -> Principal:
        digest = hash_key(value)
        record = await self._lookup(digest)
        # compare_digest keeps the check constant-time even though the lookup is by hash.
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise InvalidApiKey("the API key is not valid")
        if record.revoked_at is not None:
            raise InvalidApiKey("the API key was revoked")
        if record.expires_at is not None and record.expires_at <= now():
            raise InvalidApiKey("the API key has expired")
        # `last used` is for people: one write a minute per key and replica, not one per request.
        if time.monotonic() - self._last_touch.get(record.id, -TOUCH_EVERY) >= TOUCH_EVERY:
            self._last_touch[record.id] = time.monotonic()
            await self._store.touch(record.id, every_seconds=TOUCH_EVERY)
        return _principal(record)

    async def ensure_bootstrap_key(self, value: str) -> None:
        """Makes the configured first key an owner key, once; restarts find it already there."""
        digest = hash_key(value)
        if await self._store.get_by_hash(digest) is not None:
            return
        if await self._store.is_retired(digest):
            log.warning("bootstrap_key_retired")
            return
        key_id = await self._insert_configured(
            value,
            kind=SECRET_KIND,
            name="bootstrap",
            scopes=ALL_SCOPES,
            details={"bootstrap": True},
        )
        log.info("bootstrap_key_created", key_id=key_id)

    async def ensure_web_key(
        self, value: str, *, agent_ids: Collection[str], origins: Collection[str]
    ) -> bool:
        """Stores the served page's publishable key once (VOICEGW_WEB_PUBLISHABLE_KEY), bound to
        `agent_ids` and `origins`; a known value is used as it is. False when the value cannot
        serve a page (revoked, expired, retired by a rotation, or not a publishable key), so the
        page says so instead of failing on every call."""
        digest = hash_key(value)
        record = await self._store.get_by_hash(digest)
        if record is not None:
            live = record.revoked_at is None and (
                record.expires_at is None or record.expires_at > now()
            )
            if record.kind != PUBLISHABLE_KIND or not live:
                log.warning("web_key_unusable", key_id=record.id)
                return False
            return True
        if await self._store.is_retired(digest):
            log.warning("web_key_retired")
            return False
        key_id = await self._insert_configured(
            value,
            kind=PUBLISHABLE_KIND,
            name="web page",
            scopes=PUBLISHABLE_SCOPES,
            details={"kind": PUBLISHABLE_KIND, "web": True},
            agent_ids=tuple(agent_ids),
            allowed_origins=tuple(dict.fromkeys(_check_origin(o) for o in origins)),
            limits=self._with_defaults(KeyLimits()),
        )
        log.info("web_key_created", key_id=key_id)
        return True

    async def _insert_configured(
        self,
        value: str,
        *,
        kind: str,
        name: str,
        scopes: tuple[str, ...],
        details: dict[str, object],
        agent_ids: tuple[str, ...] = (),
        allowed_origins: tuple[str, ...] = (),
        limits: KeyLimits = KeyLimits(),
    ) -> str:
        """Stores a key whose value comes from the gateway's settings, not from create()."""
        key_id = new_key_id()
        await self._store.insert(
            key_id=key_id,
            prefix=key_prefix(value),
            key_hash=hash_key(value),
            kind=kind,
            name=name,
            scopes=scopes,
            agent_ids=agent_ids,
            allowed_origins=allowed_origins,
            rate_limit_per_minute=limits.rate_limit_per_minute,
            rate_limit_window_seconds=limits.rate_limit_window_seconds,
            max_concurrent_sessions=limits.max_concurrent_sessions,
            audit=audit_entry(KEY_CREATED, key_id=key_id, details=details),
        )
        return key_id

    async def create(self, spec: NewKey, *, actor: Principal) -> IssuedKey:
        spec = check_new_key(spec, actor=actor, known_agents=self._known_agents, at=now())
        limits = self._with_defaults(spec.limits)
        value = new_key_value(spec.kind)
        key_id = new_key_id()
        record = await self._store.insert(
            key_id=key_id,
            prefix=key_prefix(value),
            key_hash=hash_key(value),
            kind=spec.kind,
            name=spec.name,
            scopes=spec.scopes or (),
            agent_ids=spec.agent_ids,
            allowed_origins=spec.allowed_origins,
            expires_at=spec.expires_at,
            rate_limit_per_minute=limits.rate_limit_per_minute,
            rate_limit_window_seconds=limits.rate_limit_window_seconds,
            max_concurrent_sessions=limits.max_concurrent_sessions,
            allow_browser=spec.allow_browser,
            audit=audit_entry(
                KEY_CREATED,
                key_id=key_id,
                actor_key_id=actor.key_id,
                details={
                    "kind": spec.kind,
                    "scopes": list(spec.scopes or ()),
                    "allowBrowser": spec.allow_browser,
                },
            ),
        )
        log.info("api_key_created", key_id=key_id, kind=spec.kind, actor_key_id=actor.key_id)
        return IssuedKey(record=record, value=value)

    async def list_keys(self) -> list[ApiKeyRecord]:
        return await self._store.list_all()

    async def get(self, key_id: str) -> ApiKeyRecord:
        record = await self._store.get(key_id)
        if record is None:
            raise KeyNotFound(f"no key with id {key_id!r}")
        return record

    async def revoke(self, key_id: str, *, actor: Principal) -> ApiKeyRecord:
        entry = audit_entry(KEY_REVOKED, key_id=key_id, actor_key_id=actor.key_id)
        record = await self._store.revoke(key_id, audit=entry)
        self._forget(key_id)
        if record is None:
            raise KeyNotFound(f"no key with id {key_id!r}")
        log.info("api_key_revoked", key_id=key_id, actor_key_id=actor.key_id)
        return record

    async def rotate(self, key_id: str, *, actor: Principal) -> IssuedKey:
        """Same id, new value. Rotating answers the new value, so the caller must already hold
        every scope of the key: otherwise rotation would be a way to gain them."""
        current = await self.get(key_id)
        for scope in current.scopes:
            if scope not in actor.scopes:
                raise InsufficientScope(f"this key cannot rotate a key with the scope {scope!r}")
        value = new_key_value(current.kind)
        entry = audit_entry(KEY_ROTATED, key_id=key_id, actor_key_id=actor.key_id)
        record = await self._store.rotate(
            key_id, new_hash=hash_key(value), new_prefix=key_prefix(value), audit=entry
        )
        self._forget(key_id)
        if record is None:
            raise KeyNotFound(f"no key with id {key_id!r}")
        if record.revoked_at is not None:
            raise KeyRevoked("a revoked key cannot be rotated; create a new key")
        log.info("api_key_rotated", key_id=key_id, actor_key_id=actor.key_id)
        return IssuedKey(record=record, value=value)

    async def origin_known(self, origin: str) -> bool:
        """Whether some live publishable key allows this origin (CORS preflights carry no key)."""
        at = now()
        return any(
            origin_allowed(origin, k.allowed_origins)
            for k in await self._store.list_publishable()
            if k.expires_at is None or k.expires_at > at
        )

    def _with_defaults(self, limits: KeyLimits) -> KeyLimits:
        d = self._defaults
        return KeyLimits(
            rate_limit_per_minute=limits.rate_limit_per_minute or d.rate_limit_per_minute,
            rate_limit_window_seconds=limits.rate_limit_window_seconds
            or d.rate_limit_window_seconds,
            max_concurrent_sessions=limits.max_concurrent_sessions or d.max_concurrent_sessions,
        )


def _principal(record: ApiKeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        kind=record.kind,
        scopes=frozenset(record.scopes),
        agent_ids=frozenset(record.agent_ids),
        allowed_origins=frozenset(record.allowed_origins),
        limits=KeyLimits(
            rate_limit_per_minute=record.rate_limit_per_minute,
            rate_limit_window_seconds=record.rate_limit_window_seconds,
            max_concurrent_sessions=record.max_concurrent_sessions,
        ),
        allow_browser=record.allow_browser,
    )
