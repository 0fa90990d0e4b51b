"""Key values, their hashes, and what a principal may do: the pure rules behind the key API."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from voice_gateway.errors import (
    InsufficientScope,
    InvalidRequest,
    OriginNotAllowed,
    SecretKeyInBrowser,
    WrongKeyType,
)
from voice_gateway.services.keys import (
    ALL_SCOPES,
    PREFIX_LEN,
    NewKey,
    Principal,
    check_new_key,
    hash_key,
    key_prefix,
    new_key_id,
    new_key_value,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = Principal("key_owner", "secret", frozenset(ALL_SCOPES), frozenset(), frozenset())
BROWSER = Principal(
    "key_pk",
    "publishable",
    frozenset({"sessions:write"}),
    frozenset({"demo"}),
    frozenset({"https://app.example.com"}),
)


@pytest.mark.parametrize(("kind", "tag"), [("secret", "sk"), ("publishable", "pk")])
def test_a_key_value_shows_its_kind_and_carries_256_random_bits(kind: str, tag: str) -> None:
    value = new_key_value(kind)
    assert re.fullmatch(rf"vgw_{tag}_[A-Za-z0-9_-]{{43}}", value)
    assert len({new_key_value(kind) for _ in range(100)}) == 100


def test_the_id_is_short_and_unrelated_to_the_value() -> None:
    assert re.fullmatch(r"key_[0-9a-f]{16}", new_key_id())


def test_the_stored_hash_is_sha256_and_the_prefix_too_short_to_use() -> None:
    value = new_key_value("secret")
    assert hash_key(value) == hashlib.sha256(value.encode()).hexdigest()
    assert hash_key(value) != hash_key(value + "x")
    assert key_prefix(value) == value[:PREFIX_LEN] and key_prefix(value).startswith("vgw_sk_")
    assert len(value) - PREFIX_LEN >= 32


@pytest.mark.parametrize(
    ("value", "prefix"),
    [("changeme", "ch"), ("devkey", "d"), ("x", ""), ("vgw_sk_dev_" + "a" * 32, "vgw_sk_dev")],
)
def test_the_prefix_of_a_hand_made_bootstrap_value_shows_a_quarter_at_most(
    value: str, prefix: str
) -> None:
    assert key_prefix(value) == prefix


def test_scopes_are_checked() -> None:
    reader = Principal("k", "secret", frozenset({"sessions:read"}), frozenset(), frozenset())
    reader.require("sessions:read")
    with pytest.raises(InsufficientScope):
        reader.require("sessions:write")


@pytest.mark.parametrize("scope", ["sessions:read", "keys:write", "ops:write"])
def test_a_publishable_key_on_a_read_or_admin_endpoint_is_the_wrong_key_type(scope: str) -> None:
    with pytest.raises(WrongKeyType):
        BROWSER.require(scope)
    BROWSER.require("sessions:write")


def test_a_publishable_key_only_works_from_its_origins() -> None:
    BROWSER.require_origin("https://app.example.com")
    for origin in (None, "", "https://evil.example.com", "null", "http://app.example.com"):
        with pytest.raises(OriginNotAllowed):
            BROWSER.require_origin(origin)
    OWNER.require_origin(None)  # secret keys live on servers, where there is no origin


def test_a_publishable_key_only_starts_its_agents() -> None:
    BROWSER.require_agent("demo")
    with pytest.raises(InsufficientScope, match="support"):
        BROWSER.require_agent("support")
    OWNER.require_agent("support")


def test_a_publishable_key_only_sets_the_overrides_the_agent_allows() -> None:
    allowed = frozenset({"greeting", "maxDurationSeconds"})
    BROWSER.require_overrides(["greeting", "max_duration_seconds"], allowed)
    with pytest.raises(InsufficientScope, match="instructions"):
        BROWSER.require_overrides(["greeting", "instructions"], allowed)
    OWNER.require_overrides(["instructions"], allowed)


def test_a_publishable_key_only_ends_the_sessions_it_started() -> None:
    BROWSER.require_may_end("key_pk")
    for other in ("key_other", None):
        with pytest.raises(InsufficientScope):
            BROWSER.require_may_end(other)
    OWNER.require_may_end("key_other")


def test_a_secret_key_defaults_to_starting_sessions_only() -> None:
    spec = check_new_key(NewKey(name=" ci "), actor=OWNER, known_agents=["demo"], at=NOW)
    assert spec.scopes == ("sessions:write",) and spec.name == "ci"


def test_a_publishable_key_is_normalized() -> None:
    spec = check_new_key(
        NewKey(
            name="web",
            kind="publishable",
            agent_ids=("demo", "demo"),
            allowed_origins=("HTTPS://App.Example.com:443/", "https://*.example.org"),
        ),
        actor=OWNER,
        known_agents=["demo"],
        at=NOW,
    )
    assert spec.scopes == ("sessions:write",)
    assert spec.agent_ids == ("demo",)
    assert spec.allowed_origins == ("https://app.example.com", "https://*.example.org")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (NewKey(name="  "), "name"),
        (NewKey(name="x", scopes=()), "scopes"),
        (NewKey(name="x", scopes=("sessions:delete",)), "scopes"),
        (NewKey(name="x", agent_ids=("demo",)), "agentIds"),
        (NewKey(name="x", allowed_origins=("https://a.com",)), "allowedOrigins"),
        (NewKey(name="x", expires_at=NOW - timedelta(seconds=1)), "expiresAt"),
        (NewKey(name="x", kind="publishable", allowed_origins=("https://a.com",)), "agentIds"),
        (NewKey(name="x", kind="publishable", agent_ids=("demo",)), "allowedOrigins"),
        (
            NewKey(
                name="x",
                kind="publishable",
                agent_ids=("nope",),
                allowed_origins=("https://a.com",),
            ),
            "agentIds",
        ),
        (
            NewKey(name="x", kind="publishable", agent_ids=("demo",), allowed_origins=("*",)),
            "allowedOrigins",
        ),
        (
            NewKey(
                name="x",
                kind="publishable",
                scopes=("keys:write",),
                agent_ids=("demo",),
                allowed_origins=("https://a.com",),
            ),
            "scopes",
        ),
    ],
)
def test_a_bad_key_spec_names_the_field(spec: NewKey, field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        check_new_key(spec, actor=OWNER, known_agents=["demo"], at=NOW)


def test_a_key_cannot_grant_a_scope_it_lacks() -> None:
    admin = Principal(
        "key_admin", "secret", frozenset({"keys:write", "sessions:write"}), frozenset(), frozenset()
    )
    check_new_key(NewKey(name="x"), actor=admin, known_agents=None, at=NOW)
    with pytest.raises(InsufficientScope, match="ops:write"):
        check_new_key(
            NewKey(name="x", scopes=("ops:write",)), actor=admin, known_agents=None, at=NOW
        )


def test_a_naive_expiry_is_read_as_utc() -> None:
    naive = datetime(2027, 1, 1)
    spec = check_new_key(NewKey(name="x", expires_at=naive), actor=OWNER, known_agents=[], at=NOW)
    assert spec.expires_at == naive.replace(tzinfo=UTC)


def test_a_secret_key_from_a_browser_is_refused_unless_allowed() -> None:
    with pytest.raises(SecretKeyInBrowser) as refused:
        OWNER.require_not_in_browser("https://app.example.com")
    assert "publishable" in refused.value.message
    OWNER.require_not_in_browser(None)  # a server: no Origin header
    BROWSER.require_not_in_browser("https://app.example.com")
    console = Principal(
        "key_ops", "secret", frozenset(ALL_SCOPES), frozenset(), frozenset(), allow_browser=True
    )
    console.require_not_in_browser("https://ops.example.com")


def test_allow_browser_is_for_secret_keys_only() -> None:
    spec = NewKey(
        name="web",
        kind="publishable",
        agent_ids=("demo",),
        allowed_origins=("https://app.example.com",),
        allow_browser=True,
    )
    with pytest.raises(InvalidRequest, match="allowBrowser"):
        check_new_key(spec, actor=OWNER, known_agents=None, at=NOW)
    ops = check_new_key(
        NewKey(name="ops", allow_browser=True), actor=OWNER, known_agents=None, at=NOW
    )
    assert ops.allow_browser
