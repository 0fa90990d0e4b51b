"""The key service on a real (SQLite) store: what is stored, what stops working, what is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from voice_gateway.errors import InsufficientScope, InvalidApiKey, KeyNotFound, KeyRevoked
from voice_gateway.services.keys import (
    ALL_SCOPES,
    KeyLimits,
    KeyService,
    NewKey,
    Principal,
    hash_key,
)
from voice_gateway.store.database import Database, now
from voice_gateway.store.keys import KeyStore
from voice_gateway.store.tables import api_keys, audit_events

pytestmark = pytest.mark.unit

OWNER = Principal("key_owner", "secret", frozenset(ALL_SCOPES), frozenset(), frozenset())
DEFAULTS = KeyLimits(
    rate_limit_per_minute=30, rate_limit_window_seconds=60, max_concurrent_sessions=3
)


def service(db: Database) -> KeyService:
    return KeyService(KeyStore(db), defaults=DEFAULTS, known_agents=["demo", "support"])


async def rows(db: Database, table: Any) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def test_only_the_hash_is_stored_and_limits_default_from_settings(db: Database) -> None:
    keys = service(db)
    issued = await keys.create(NewKey(name="ci"), actor=OWNER)
    [row] = [r for r in await rows(db, api_keys) if r.id == issued.record.id]
    assert row.key_hash == hash_key(issued.value)
    assert issued.value not in [str(v) for v in row]
    assert (row.rate_limit_per_minute, row.max_concurrent_sessions) == (30, 3)
    assert issued.value not in repr(issued)
    principal = await keys.authenticate(issued.value)
    assert principal.key_id == issued.record.id and principal.limits == DEFAULTS


async def test_rotation_keeps_the_id_and_stops_the_old_value(db: Database) -> None:
    keys = service(db)
    issued = await keys.create(NewKey(name="rotating"), actor=OWNER)
    rotated = await keys.rotate(issued.record.id, actor=OWNER)
    assert rotated.record.id == issued.record.id and rotated.value != issued.value
    assert rotated.record.rotated_at is not None
    with pytest.raises(InvalidApiKey):
        await keys.authenticate(issued.value)
    assert (await keys.authenticate(rotated.value)).key_id == issued.record.id


async def test_revocation_is_immediate_and_idempotent(db: Database) -> None:
    keys = service(db)
    issued = await keys.create(NewKey(name="revoked"), actor=OWNER)
    first = await keys.revoke(issued.record.id, actor=OWNER)
    with pytest.raises(InvalidApiKey, match="revoked"):
        await keys.authenticate(issued.value)
    again = await keys.revoke(issued.record.id, actor=OWNER)
    assert first.revoked_at == again.revoked_at is not None
    with pytest.raises(KeyRevoked):
        await keys.rotate(issued.record.id, actor=OWNER)
    with pytest.raises(KeyNotFound):
        await keys.revoke("key_nope", actor=OWNER)


async def test_an_expired_key_fails(db: Database) -> None:
    store = KeyStore(db)
    await store.insert(
        key_id="key_expired",
        prefix="vgw_sk_expired",
        key_hash=hash_key("vgw_sk_expired-value"),
        kind="secret",
        name="old",
        scopes=["sessions:write"],
        expires_at=now() - timedelta(seconds=1),
    )
    with pytest.raises(InvalidApiKey, match="expired"):
        await service(db).authenticate("vgw_sk_expired-value")


async def test_rotation_cannot_hand_out_scopes_the_caller_lacks(db: Database) -> None:
    keys = service(db)
    ops = await keys.create(NewKey(name="ops", scopes=("ops:write",)), actor=OWNER)
    admin = Principal(
        "key_admin", "secret", frozenset({"keys:write", "sessions:write"}), frozenset(), frozenset()
    )
    with pytest.raises(InsufficientScope):
        await keys.rotate(ops.record.id, actor=admin)


async def test_a_rotated_bootstrap_value_does_not_come_back_on_restart(db: Database) -> None:
    keys = service(db)
    await keys.ensure_bootstrap_key("owner-secret-value")
    owner = await keys.authenticate("owner-secret-value")
    assert owner.scopes == frozenset(ALL_SCOPES) and owner.limits == KeyLimits()
    await keys.rotate(owner.key_id, actor=owner)
    await keys.ensure_bootstrap_key("owner-secret-value")  # the restart
    with pytest.raises(InvalidApiKey):
        await keys.authenticate("owner-secret-value")


async def test_key_changes_are_audited_by_id(db: Database) -> None:
    keys = service(db)
    issued = await keys.create(NewKey(name="audited"), actor=OWNER)
    rotated = await keys.rotate(issued.record.id, actor=OWNER)
    await keys.revoke(issued.record.id, actor=OWNER)
    events = [
        (r.event, r.actor_key_id)
        for r in await rows(db, audit_events)
        if r.key_id == issued.record.id
    ]
    assert events == [
        ("key.created", "key_owner"),
        ("key.rotated", "key_owner"),
        ("key.revoked", "key_owner"),
    ]
    text = str(await rows(db, audit_events))
    for secret in (issued.value, rotated.value, hash_key(issued.value), hash_key(rotated.value)):
        assert secret not in text


async def test_cors_knows_the_origins_of_live_publishable_keys_only(db: Database) -> None:
    keys = service(db)
    spec = NewKey(
        name="web",
        kind="publishable",
        agent_ids=("demo",),
        allowed_origins=("https://cors-unit.example.com",),
    )
    issued = await keys.create(spec, actor=OWNER)
    assert await keys.origin_known("https://cors-unit.example.com")
    assert not await keys.origin_known("https://other.example.com")
    await keys.revoke(issued.record.id, actor=OWNER)
    assert not await keys.origin_known("https://cors-unit.example.com")


async def test_a_cached_key_stops_at_once_on_this_replica_and_within_the_ttl_on_another(
    db: Database,
) -> None:
    """Issue 13: no store read per request. The replica that revokes or rotates drops its cached
    entry at once; another replica trusts what it read for at most its cache time."""
    clock = [0.0]
    here = KeyService(KeyStore(db), defaults=DEFAULTS, cache_seconds=2, clock=lambda: clock[0])
    there = KeyService(KeyStore(db), defaults=DEFAULTS, cache_seconds=2, clock=lambda: clock[0])
    issued = await here.create(NewKey(name="cached"), actor=OWNER)
    await here.authenticate(issued.value)
    await there.authenticate(issued.value)
    rotated = await here.rotate(issued.record.id, actor=OWNER)
    with pytest.raises(InvalidApiKey):
        await here.authenticate(issued.value)
    await there.authenticate(issued.value)  # still in the other replica's cache
    clock[0] += 2.0
    with pytest.raises(InvalidApiKey):
        await there.authenticate(issued.value)
    await here.authenticate(rotated.value)
    await here.revoke(issued.record.id, actor=OWNER)
    with pytest.raises(InvalidApiKey):
        await here.authenticate(rotated.value)
