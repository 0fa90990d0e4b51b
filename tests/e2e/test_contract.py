"""The contract, fuzzed: schemathesis reads the live gateway's own OpenAPI document and sends
every operation bounded examples (schema-valid and not). No answer may be a 5xx, every answer
must be one the document lists, in its schema, and nothing the run starts may be left behind:
no room in LiveKit (a phone number's ready room included), no live session, no usable key.
What would dial or transfer is left out (tests/e2e/schemathesis.toml)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from devstack.stack import Stack
from tests.e2e.conftest import AGENT_JOIN_S, Gateway, room_names
from voice_gateway.pagination import encode_cursor

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Bounds: examples per operation and phases; about a thousand requests in all.
MAX_EXAMPLES = 10
PHASES = "examples,coverage,fuzzing"
ALL_SCOPES = ["sessions:write", "sessions:read", "keys:write", "ops:write", "phone:write"]


async def audit(gateway: Gateway, **query: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = ""
    while True:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        status, page = await gateway.get(f"/v1/audit?limit=200&{params}{cursor}")
        assert status == 200, page
        events += page["data"]
        if not page["meta"]["nextCursor"]:
            return events
        cursor = f"&cursor={page['meta']['nextCursor']}"


async def live_rooms(gateway: Gateway) -> set[str]:
    status, page = await gateway.get("/v1/sessions?status=starting,ringing,active&limit=200")
    assert status == 200, page
    return {s["roomName"] for s in page["data"]}


async def end_what_it_started(
    gateway: Gateway, fuzz_key_id: str, live_before: set[str]
) -> list[str]:
    """Ends each session the run started and left live (by /v1/sessions/start or LiveKit's token
    endpoint, both audited; and any session live now that was not before, should an audit row be
    missing), as its client would: after the agent joined (a job still on its way would
    otherwise re-create the room it was sent to)."""
    started = await audit(gateway, actorKeyId=fuzz_key_id, event="session.started")
    audited = [e["details"]["roomName"] for e in started]
    rooms = list(dict.fromkeys([*audited, *sorted(await live_rooms(gateway) - live_before)]))
    for room in rooms:
        record = await gateway.session(room)
        if record["status"] in ("ended", "failed"):
            continue
        if record["channel"] == "chat":  # no room, no agent to wait for
            status, ended = await gateway.end(room)
            assert status == 200, ended
            continue
        with contextlib.suppress(AssertionError):
            await gateway.wait_for_session(
                room, lambda r: r["participants"]["agent"]["joinedAt"], AGENT_JOIN_S, "the agent"
            )
        status, ended = await gateway.end(room)
        assert status == 200, ended
    return rooms


async def delete_numbers_it_made(gateway: Gateway, fuzz_key_id: str) -> None:
    """A number holds a ready room in LiveKit: each one the run made goes, with its room."""
    made = await audit(gateway, actorKeyId=fuzz_key_id, event="phone_number.created")
    for number_id in {e["details"]["numberId"] for e in made}:
        status, payload = await gateway.delete(f"/v1/phone-numbers/{number_id}")
        assert status in (200, 404), payload


async def revoke_what_it_made(gateway: Gateway, key_ids: list[str]) -> None:
    for key_id in key_ids:
        status, payload, _ = await gateway.post(f"/v1/keys/{key_id}/revoke")
        assert status == 200, payload


async def test_the_gateway_keeps_its_documented_contract(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI, tmp_path: Path
) -> None:
    rooms_before, live_before = await room_names(lkapi), await live_rooms(gateway)
    status, fuzz, _ = await gateway.post(
        "/v1/keys",
        {
            "name": "contract-fuzz",
            "scopes": ALL_SCOPES,
            "rateLimitPerMinute": 600,
            # Bounds what the run can start: valid starts beyond two live sessions meet 429.
            "maxConcurrentSessions": 2,
        },
    )
    assert status == 201, fuzz
    status, target, _ = await gateway.post(
        "/v1/keys", {"name": "contract-fuzz-target", "scopes": ["sessions:read"]}
    )
    assert status == 201, target
    # A chat session of the fuzz key's own, so the chat operations reach a real session (and
    # its agent's replies), not only 404s for random ids; ended with the rest afterwards.
    async with gateway.http.post(
        f"{stack.gateway_url}/v1/chat/sessions",
        json={"agentId": "demo"},
        headers={"x-api-key": fuzz["key"]},
    ) as resp:
        assert resp.status == 201, await resp.text()
        chat_session = (await resp.json())["sessionId"]
    seed = os.environ.get("VOICEGW_FUZZ_SEED") or str(secrets.randbelow(2**31))
    env = {
        **os.environ,
        "VOICEGW_FUZZ_API_KEY": fuzz["key"],
        "VOICEGW_FUZZ_TARGET_KEY_ID": target["id"],
        "VOICEGW_FUZZ_CHAT_SESSION": chat_session,
        "VOICEGW_FUZZ_CURSOR": encode_cursor(datetime(2000, 1, 1, tzinfo=UTC), "0"),
        "NO_COLOR": "1",
    }
    argv = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.gateway_url}/v1/openapi.json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        PHASES,
        "--seed",
        seed,
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    try:
        run = await asyncio.to_thread(
            # Its cache and reports go to a scratch folder, not the checkout.
            subprocess.run,
            argv,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        started = await end_what_it_started(gateway, fuzz["id"], live_before)
        await delete_numbers_it_made(gateway, fuzz["id"])
        made = [
            e["keyId"] for e in await audit(gateway, actorKeyId=fuzz["id"], event="key.created")
        ]
        await revoke_what_it_made(gateway, [*made, target["id"], fuzz["id"]])
    # A failure's reproducing curl may hold a body of a megabyte: cut, so the failures show.
    stdout = "\n".join(line[:1500] for line in run.stdout.splitlines())
    report = f"seed {seed} (VOICEGW_FUZZ_SEED replays it)\n{stdout[-12000:]}{run.stderr[-3000:]}"
    assert run.returncode == 0, report
    assert "Tested: 0" not in run.stdout, report

    # What it started is over, and LiveKit holds no room of it once its webhooks are in.
    for room in started:
        record = await gateway.session(room)
        assert record["status"] in ("ended", "failed"), record
    for _ in range(100):
        if not (await room_names(lkapi)) - rooms_before:
            break
        await asyncio.sleep(0.3)
    assert (await room_names(lkapi)) - rooms_before == set()
    assert not (await live_rooms(gateway)) & set(started)
    # The stack's owner key came through untouched.
    status, keys = await gateway.get("/v1/keys")
    assert status == 200, keys
