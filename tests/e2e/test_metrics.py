"""An operator's story: scrape the gateway and the worker during and after a real conversation and
after errors, and see the numbers move, with no room, session, identity or key in any label; read
one log line per request, joined by the request id the caller sent."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import Stack
from devstack.voice_client import VoiceClient
from tests.e2e.conftest import Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STAGES = ("end_of_speech", "stt", "llm", "tts")
# A web start's room comes with its agent's dispatch; `dispatch` is an inbound call's stage.
CREATE_ROOM = "RoomService.create_room"
START_STAGES = ("reserve", "create_room", "activate")
START_ROUTE = "/v1/sessions/start"


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def names(samples: Samples) -> set[str]:
    return {n for n, _ in samples}


async def wait_until(
    read: Callable[[], Awaitable[Samples]], check: Callable[[Samples], bool], what: str
) -> Samples:
    for _ in range(100):
        samples = await read()
        if check(samples):
            return samples
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def assert_no_private_labels(samples: Samples, private: list[str]) -> None:
    for name, labels in samples:
        for label, label_value in labels:
            assert label not in ("room", "session", "session_id", "identity", "key"), name
            assert all(p not in label_value for p in private), (name, label, label_value)


async def test_a_conversation_moves_the_gateway_and_worker_metrics(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    stack: Stack,
    client: VoiceClient,
    question_wav: Path,
) -> None:
    worker_url = stack.workers[0].metrics_url
    assert worker_url is not None

    async def gw() -> Samples:
        return await scrape(http, f"{stack.gateway_url}/metrics")

    async def wk() -> Samples:
        return await scrape(http, worker_url)

    g0, w0 = await gw(), await wk()
    session = await gateway.start(agentId="demo", userIdentity="metrics-caller")
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent()

    # While the call runs, both sides count it as live.
    g_live = await gw()
    assert value(g_live, "voicegw_live_sessions", agent="demo", channel="web") >= 1
    w_live = await wait_until(
        wk, lambda s: value(s, "voicegw_worker_live_sessions", agent="demo") >= 1, "a live job"
    )
    assert value(w_live, "voicegw_worker_processes") >= 2  # main and at least one job process
    assert value(w_live, "voicegw_worker_cpu_seconds_total") > 0
    assert value(w_live, "voicegw_worker_memory_bytes") > 0
    assert "process_resident_memory_bytes" in names(w_live)
    assert "lk_agents_active_job_count" in names(w_live), "livekit-agents' own series are merged"

    await client.wait_for(lambda: client.captions_of(agent), 20, "the greeting caption")
    await client.wait_for(
        lambda: (
            (v := client.agent_voice()) is not None
            and v.first_loud_at is not None
            and v.loud_after(time.monotonic() - 0.3) is None
        ),
        20,
        "the greeting to finish",
    )
    await client.speak_wav(question_wav)
    await client.wait_for(lambda: len(client.captions_of(agent)) >= 2, 30, "the agent's answer")

    # Every pipeline stage was observed in the job process and reached the worker's /metrics.
    def stages_moved(s: Samples) -> bool:
        return all(
            value(s, "voicegw_worker_pipeline_stage_seconds_count", stage=stage)
            > value(w0, "voicegw_worker_pipeline_stage_seconds_count", stage=stage)
            for stage in STAGES
        )

    w1 = await wait_until(wk, stages_moved, "a per-stage observation of every stage")
    assert value(w1, "voicegw_worker_sessions_total", outcome="started") > value(
        w0, "voicegw_worker_sessions_total", outcome="started"
    )

    status, _ = await gateway.end(session["roomName"])
    assert status == 200
    g1 = await wait_until(
        gw,
        lambda s: (
            value(s, "voicegw_livekit_webhooks_total", event="room_finished", outcome="ok")
            > value(g0, "voicegw_livekit_webhooks_total", event="room_finished", outcome="ok")
        ),
        "LiveKit's room_finished webhook",
    )

    def moved(name: str, **labels: str) -> float:
        return value(g1, name, **labels) - value(g0, name, **labels)

    assert moved("voicegw_sessions_started_total", agent="demo", channel="web") >= 1
    assert (
        moved(
            "voicegw_sessions_ended_total",
            agent="demo",
            channel="web",
            status="ended",
            reason="client_ended",
        )
        >= 1
    )
    assert moved("voicegw_session_start_duration_seconds_count") >= 1
    for stage in START_STAGES:
        assert moved("voicegw_session_start_stage_duration_seconds_count", stage=stage) >= 1
    assert moved("voicegw_livekit_api_request_duration_seconds_count", call=CREATE_ROOM) >= 1
    assert moved("voicegw_livekit_webhooks_total", event="participant_joined", outcome="ok") >= 1
    assert moved("voicegw_http_requests_total", route=START_ROUTE, status="201") >= 1
    assert moved("voicegw_http_request_duration_seconds_count", route="/v1/sessions/{room}") == 0
    assert "process_cpu_seconds_total" in names(g1)
    private = [session["roomName"], session["sessionId"], "metrics-caller", stack.api_key]
    assert_no_private_labels(g1, private)
    assert_no_private_labels(w1, private)


async def test_errors_move_their_counters(
    gateway: Gateway, http: aiohttp.ClientSession, stack: Stack
) -> None:
    worker_url = stack.workers[0].metrics_url
    assert worker_url is not None

    async def gw() -> Samples:
        return await scrape(http, f"{stack.gateway_url}/metrics")

    g0, w0 = await gw(), await scrape(http, worker_url)

    for key in (None, "vgw_sk_not-a-key"):
        status, _, _ = await gateway.post("/v1/sessions/start", {"agentId": "demo"}, key=key)
        assert status == 401
    status, _, _ = await gateway.post("/v1/sessions/start", {"agentId": "nobody"})
    assert status == 404
    status, _, _ = await gateway.post(
        "/v1/livekit/webhook",
        data=b"{}",
        key=None,
        headers={"Authorization": "Bearer not.a.jwt", "Content-Type": "application/webhook+json"},
    )
    assert status == 401
    # One start per minute: of three refused-anyway starts, at least one meets the limit.
    status, limited, _ = await gateway.post(
        "/v1/keys", {"name": "slow", "rateLimitPerMinute": 1, "rateLimitWindowSeconds": 60}
    )
    assert status == 201, limited
    statuses = [
        (await gateway.post("/v1/sessions/start", {"agentId": "nobody"}, key=limited["key"]))[0]
        for _ in range(3)
    ]
    assert 429 in statuses
    # An engine the worker cannot build fails the session: an engine error and a failed end.
    session = await gateway.start(agentId="demo", agentConfig={"llm": "openai:gpt-4o-mini"})
    await gateway.wait_for_session(
        session["roomName"], lambda r: r["status"] == "failed", 45, "the session to fail"
    )

    g1 = await gw()
    w1 = await wait_until(
        lambda: scrape(http, worker_url),
        lambda s: (
            value(s, "voicegw_worker_engine_errors_total", engine="config")
            > value(w0, "voicegw_worker_engine_errors_total", engine="config")
        ),
        "the worker's engine error",
    )

    def moved(name: str, **labels: str) -> float:
        return value(g1, name, **labels) - value(g0, name, **labels)

    assert moved("voicegw_auth_failures_total", reason="missing_api_key") >= 1
    assert moved("voicegw_auth_failures_total", reason="invalid_api_key") >= 1
    assert moved("voicegw_http_requests_total", route=START_ROUTE, status="404") >= 1
    assert (
        moved("voicegw_livekit_webhooks_total", event="unknown", outcome="invalid_signature") >= 1
    )
    assert moved("voicegw_rate_limited_total", limit="rate") >= 1
    assert (
        moved("voicegw_sessions_ended_total", agent="demo", status="failed", reason="agent_failed")
        >= 1
    )
    assert value(w1, "voicegw_worker_sessions_total", outcome="failed") > value(
        w0, "voicegw_worker_sessions_total", outcome="failed"
    )
    assert_no_private_labels(g1, [session["roomName"], limited["key"], limited["id"]])


async def test_each_request_logs_one_line_with_the_request_id_and_key_id(
    gateway: Gateway, stack: Stack
) -> None:
    request_id = f"it-{secrets.token_hex(6)}"
    status, payload, resp = await gateway.post(
        "/v1/sessions/end", {"roomName": "no-such-room"}, headers={"X-Request-Id": request_id}
    )
    assert status == 404
    assert resp.headers["X-Request-Id"] == request_id
    assert payload["error"]["requestId"] == request_id
    status, _, resp = await gateway.post("/v1/sessions/end", {"roomName": "x"}, key=None)
    generated = resp.headers["X-Request-Id"]
    assert status == 401 and generated and generated != request_id

    assert stack.gateway is not None
    lines: list[dict[str, object]] = []
    for _ in range(50):
        lines = [
            json.loads(line)
            for line in stack.gateway.log_text().splitlines()
            if line.startswith("{") and '"event": "request"' in line
        ]
        if any(line["request_id"] == generated for line in lines):
            break
        await asyncio.sleep(0.1)
    [mine] = [line for line in lines if line["request_id"] == request_id]
    assert mine["method"] == "POST" and mine["route"] == "/v1/sessions/end"
    assert mine["status"] == 404 and isinstance(mine["duration_ms"], float)
    assert str(mine["key_id"]).startswith("key_")
    [anonymous] = [line for line in lines if line["request_id"] == generated]
    assert anonymous["status"] == 401 and anonymous.get("key_id") is None
    assert stack.api_key not in stack.gateway.log_text()
