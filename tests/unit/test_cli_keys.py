"""`voicegw keys`: arguments become the admin API's JSON (the e2e test drives it for real)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voice_gateway.cli import build_parser
from voice_gateway.cli.client import CliError
from voice_gateway.cli.keys import create_body, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "1w", "-5m", "soon"])
def test_a_bad_duration_is_a_cli_error(text: str) -> None:
    with pytest.raises(CliError):
        parse_duration(text)


def test_a_publishable_key_with_limits() -> None:
    args = build_parser().parse_args(
        [
            "keys", "create", "--name", "web", "--kind", "publishable",
            "--agent", "demo", "--agent", "support", "--origin", "https://app.example.com",
            "--rate-limit", "30", "--rate-window", "10", "--max-concurrent", "2",
        ]
    )  # fmt: skip
    assert create_body(args) == {
        "name": "web",
        "kind": "publishable",
        "agentIds": ["demo", "support"],
        "allowedOrigins": ["https://app.example.com"],
        "rateLimitPerMinute": 30,
        "rateLimitWindowSeconds": 10,
        "maxConcurrentSessions": 2,
    }


def test_expires_in_becomes_an_absolute_time() -> None:
    args = build_parser().parse_args(["keys", "create", "--name", "ci", "--expires-in", "1h"])
    body = create_body(args)
    expires = datetime.fromisoformat(body["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert body == {"name": "ci", "kind": "secret", "expiresAt": body["expiresAt"]}


def test_expires_in_and_at_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["keys", "create", "--name", "x", "--expires-in", "1d", "--expires-at", "2030-01-01"]
        )
