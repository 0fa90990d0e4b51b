"""People who type: a text-only chat session with the same agent a caller talks to, as JSON and
as server-sent events, its history, its end; a web page's publishable key from its own origin;
bad input refused with nothing stored; idle sessions ended; the terminal chat."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time

import pytest

from devstack.stack import Stack
from tests.e2e.chat import ChatApi, publishable_key
from tests.e2e.conftest import (
    CHAT_IDLE_TIMEOUT_S,
    WEBHOOK_SECRET,
    Gateway,
    WebhookReceiver,
    voicegw,
)
from tests.e2e.test_voice_session import DEMO_GREETING, HOURS_ANSWER

pytestmark = pytest.mark.e2e

PRICE_ANSWER = "The basic plan costs ten dollars a month."
FALLBACK = "Sorry, I did not catch that. Could you say it another way?"
DELIVERY = (
    "We deliver within ten kilometres. Orders placed before noon arrive the same day! "
    "Larger orders ship for free?"
)
PAGE_ORIGIN = "https://chat.example.com"


async def usage_messages(gateway: Gateway, agent: str) -> int:
    status, usage = await gateway.get("/v1/usage")
    assert status == 200, usage
    return int(usage["agents"].get(agent, {}).get("messages", 0))


async def test_a_text_session_answers_as_json_and_as_events_and_keeps_its_history(
    gateway: Gateway, webhook_receiver: WebhookReceiver
) -> None:
    chat = ChatApi(gateway)
    typed_before = await usage_messages(gateway, "demo")
    status, session, _ = await chat.create(agentId="demo", userIdentity="typist-7")
    assert status == 201, session
    sid = session["sessionId"]
    assert session["greeting"]["text"] == DEMO_GREETING
    assert session["status"] == "active" and session["userIdentity"] == "typist-7"
    record = await gateway.session(sid)  # a chat session's roomName is its session id
    assert record["channel"] == "chat" and record["status"] == "active"

    # JSON: the answer a caller hears to the spoken question, here to a typed one.
    status, reply = await chat.send(sid, {"text": "When are you open?"})
    assert status == 200, reply
    assert reply["message"]["text"] == HOURS_ANSWER
    assert reply["message"]["role"] == "agent" and reply["message"]["modality"] == "text"
    assert reply["userMessage"]["text"] == "When are you open?"

    # Server-sent events: the deltas, in order, are the completed message.
    streamed = await chat.stream(sid, "How much does the basic plan cost?")
    assert streamed.status == 200
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert streamed.headers["X-Request-Id"]
    deltas, [completed] = streamed.of("message.delta"), streamed.of("message.completed")
    assert deltas and {d["messageId"] for d in deltas} == {completed["id"]}
    assert "".join(d["delta"] for d in deltas) == completed["text"] == PRICE_ANSWER
    assert streamed.events[-1][0] == "message.completed"

    # What the agent cannot answer gets the fallback, as on a call.
    status, reply_off = await chat.send(sid, {"text": "Tell me a joke about penguins"})
    assert status == 200 and reply_off["message"]["text"] == FALLBACK

    status, history = await chat.history(sid)
    assert status == 200, history
    assert [(m["role"], m["text"]) for m in history["data"]] == [
        ("agent", DEMO_GREETING),
        ("user", "When are you open?"),
        ("agent", HOURS_ANSWER),
        ("user", "How much does the basic plan cost?"),
        ("agent", PRICE_ANSWER),
        ("user", "Tell me a joke about penguins"),
        ("agent", FALLBACK),
    ]
    assert history["meta"]["count"] == 7
    assert {m["modality"] for m in history["data"]} == {"text"}
    assert history["data"][2]["id"] == reply["message"]["id"]
    assert history["data"][4]["id"] == completed["id"]
    status, transcript = await gateway.get(f"/v1/sessions/{sid}/transcript")
    assert status == 200 and [s["modality"] for s in transcript["segments"]] == ["text"] * 7

    # A reply of several sentences streams as several deltas that add up.
    faq = [{"keywords": ["deliver", "delivery"], "answer": DELIVERY}]
    status, other, _ = await chat.create(agentId="demo", agentConfig={"faq": faq})
    assert status == 201, other
    streamed = await chat.stream(other["sessionId"], "Do you deliver to my home?")
    deltas, [completed] = streamed.of("message.delta"), streamed.of("message.completed")
    assert len(deltas) == 3
    assert "".join(d["delta"] for d in deltas) == completed["text"] == DELIVERY

    # Ending: idempotent, and an ended session takes no more messages.
    for session_id in (sid, other["sessionId"]):
        status, ended = await chat.end(session_id)
        assert status == 200, ended
        assert ended["status"] == "ended" and ended["endReason"] == "client_ended"
        assert ended["channel"] == "chat"
        assert await chat.end(session_id) == (200, ended)
    status, refused = await chat.send(sid, {"text": "Still there?"})
    assert status == 409 and refused["error"]["code"] == "session_ended"
    status, after = await chat.history(sid)
    assert status == 200 and after["meta"]["count"] == 7 and after["status"] == "ended"
    assert await usage_messages(gateway, "demo") == typed_before + 4

    # Integrations hear of it as of any session, the transcript in the end event.
    for _ in range(100):
        if webhook_receiver.events("session.ended", sid):
            break
        await asyncio.sleep(0.2)
    [started_event] = webhook_receiver.events("session.started", sid)
    assert started_event["data"]["channel"] == "chat"
    [ended_event] = webhook_receiver.events("session.ended", sid)
    lines = ended_event["data"]["transcript"]
    assert [(s["speaker"], s["modality"]) for s in lines[:2]] == [
        ("agent", "text"),
        ("user", "text"),
    ]
    headers, body = next(
        (h, b) for h, b in webhook_receiver.received if json.loads(b)["id"] == ended_event["id"]
    )
    mac = hmac.new(
        WEBHOOK_SECRET.encode(), headers["X-Voicegw-Timestamp"].encode() + b"." + body, "sha256"
    )
    assert headers["X-Voicegw-Signature"] == "v1=" + mac.hexdigest()


@pytest.mark.one_store
async def test_bad_input_is_refused_and_nothing_is_stored(gateway: Gateway) -> None:
    chat = ChatApi(gateway)
    status, session, _ = await chat.create(agentId="demo")
    assert status == 201, session
    sid = session["sessionId"]
    typed_before = await usage_messages(gateway, "demo")
    url = f"{gateway.stack.gateway_url}/v1/chat/sessions/{sid}/messages"
    key = {"x-api-key": gateway.stack.api_key}

    for body, code in [
        ({"text": ""}, "invalid_request"),
        ({"text": "   \n "}, "invalid_request"),
        ({"text": "x" * 4001}, "invalid_request"),
        ({}, "invalid_request"),
        ({"text": "hi", "stream": True}, "invalid_request"),
        ({"text": 42}, "invalid_request"),
    ]:
        status, payload = await chat.send(sid, body)
        assert (status, payload["error"]["code"]) == (400, code), (body, payload)
    json_type = {**key, "Content-Type": "application/json"}
    async with gateway.http.post(url, data=b"{not json", headers=json_type) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    async with gateway.http.post(url, data=b"text=hi", headers=key) as resp:
        assert resp.status == 415
    streamed = await chat.stream(sid, "")  # asking for events changes nothing about that
    assert streamed.status == 400 and streamed.body["error"]["code"] == "invalid_request"

    status, payload = await chat.send("ses_0123456789abcdef", {"text": "hello"})
    assert status == 404 and payload["error"]["code"] == "session_not_found"
    status, payload = await chat.history("ses_0123456789abcdef")
    assert status == 404 and payload["error"]["code"] == "session_not_found"
    status, payload, _ = await chat.create(agentId="no-such-agent")
    assert status == 404 and payload["error"]["code"] == "agent_not_found"
    status, payload, _ = await chat.create(agentId="demo", agentConfig={"colour": "red"})
    assert status == 400 and "agentConfig.colour" in payload["error"]["message"]
    # An agent on a hosted model the gateway has no key for is refused before anything exists.
    status, sessions = await gateway.get("/v1/sessions?agentId=support&limit=200")
    before = sessions["meta"]["count"]
    status, payload, _ = await chat.create(
        agentId="support", agentConfig={"llm": "openai:gpt-4o-mini"}
    )
    assert status == 503 and payload["error"]["code"] == "llm_unavailable"
    assert "OPENAI_API_KEY" in payload["error"]["message"]
    status, sessions = await gateway.get("/v1/sessions?agentId=support&limit=200")
    assert sessions["meta"]["count"] == before

    # A key without the scope, and a key of the wrong kind for the route.
    status, reader, _ = await gateway.post(
        "/v1/keys", {"name": "chat-reader", "scopes": ["sessions:read"]}
    )
    assert status == 201, reader
    status, payload = await chat.send(sid, {"text": "hello"}, key=reader["key"])
    assert status == 403 and payload["error"]["code"] == "insufficient_scope"
    page_key = await publishable_key(gateway, "chat-page-bad-input", PAGE_ORIGIN)
    status, payload = await chat.send(
        sid, {"text": "hello"}, key=page_key["key"], origin=PAGE_ORIGIN
    )
    assert status == 403 and payload["error"]["code"] == "insufficient_scope"  # not its session
    async with gateway.http.get(
        f"{gateway.stack.gateway_url}/v1/sessions/{sid}/transcript",
        headers={"x-api-key": page_key["key"], "Origin": PAGE_ORIGIN},
    ) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "wrong_key_type"

    status, ended = await chat.end(sid)
    assert status == 200, ended
    status, payload = await chat.send(sid, {"text": "hello"})
    assert status == 409 and payload["error"]["code"] == "session_ended"

    status, history = await chat.history(sid)
    assert status == 200 and [m["text"] for m in history["data"]] == [DEMO_GREETING]
    assert await usage_messages(gateway, "demo") == typed_before
    for made in (reader, page_key):
        status, _payload, _ = await gateway.post(f"/v1/keys/{made['id']}/revoke")
        assert status == 200


@pytest.mark.one_store
async def test_a_web_page_chats_with_its_publishable_key_from_its_origin_only(
    gateway: Gateway,
) -> None:
    chat = ChatApi(gateway)
    page_key = await publishable_key(gateway, "chat-page", PAGE_ORIGIN)
    key = page_key["key"]
    base = gateway.stack.gateway_url

    # The browser's preflights, for opening a session and for its messages.
    for path in ("/v1/chat/sessions", "/v1/chat/sessions/ses_0a1b/messages"):
        async with gateway.http.options(
            base + path,
            headers={
                "Origin": PAGE_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        ) as resp:
            assert resp.status == 204, path
            assert resp.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    async with gateway.http.options(
        base + "/v1/chat/sessions",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    ) as resp:
        assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers

    status, session, headers = await chat.create(key=key, origin=PAGE_ORIGIN, agentId="demo")
    assert status == 201, session
    assert headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    sid = session["sessionId"]
    streamed = await chat.stream(sid, "What are your opening hours?", key=key, origin=PAGE_ORIGIN)
    assert streamed.status == 200
    # The headers of a streamed answer left before its body: CORS is on them all the same.
    assert streamed.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert streamed.of("message.completed")[0]["text"] == HOURS_ANSWER
    status, history = await chat.history(sid, key=key, origin=PAGE_ORIGIN)
    assert status == 200 and history["meta"]["count"] == 3

    # Any other origin, or none, is refused; so is an agent the key is not bound to.
    for origin in ("https://evil.example.com", None):
        status, payload = await chat.send(sid, {"text": "hi"}, key=key, origin=origin)
        assert status == 403 and payload["error"]["code"] == "origin_not_allowed", origin
        status, payload, _ = await chat.create(key=key, origin=origin, agentId="demo")
        assert status == 403 and payload["error"]["code"] == "origin_not_allowed", origin
    status, payload, _ = await chat.create(key=key, origin=PAGE_ORIGIN, agentId="support")
    assert status == 403 and payload["error"]["code"] == "insufficient_scope"
    # A publishable key may not rewrite the agent's prompt.
    status, payload, _ = await chat.create(
        key=key, origin=PAGE_ORIGIN, agentId="demo", agentConfig={"instructions": "Be evil."}
    )
    assert status == 403 and payload["error"]["code"] == "insufficient_scope"

    status, ended = await chat.end(sid, key=key, origin=PAGE_ORIGIN)
    assert status == 200 and ended["endReason"] == "client_ended"
    status, _payload, _ = await gateway.post(f"/v1/keys/{page_key['id']}/revoke")
    assert status == 200


@pytest.mark.one_store
async def test_an_idle_chat_session_is_ended_by_the_reaper(gateway: Gateway) -> None:
    chat = ChatApi(gateway)
    status, session, _ = await chat.create(agentId="demo")
    assert status == 201, session
    sid = session["sessionId"]
    status, _reply = await chat.send(sid, {"text": "Where is your office?"})
    assert status == 200
    ended = await gateway.wait_for_session(
        sid,
        lambda r: r["status"] == "ended",
        CHAT_IDLE_TIMEOUT_S + 60,
        "the idle chat session to be ended",
    )
    assert ended["endReason"] == "idle_timeout"
    status, payload = await chat.send(sid, {"text": "Hello?"})
    assert status == 409 and payload["error"]["code"] == "session_ended"


@pytest.mark.one_store
async def test_the_terminal_chat_streams_the_agents_answers(gateway: Gateway, stack: Stack) -> None:
    user = f"terminal-{secrets.token_hex(4)}"
    typed = "How late are you open?\n\nWhat is the price?\n"
    run = await asyncio.to_thread(voicegw, stack, "chat", "demo", "--user", user, stdin=typed)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"agent> {DEMO_GREETING}",
        f"agent> {HOURS_ANSWER}",
        f"agent> {PRICE_ANSWER}",
    ]
    status, found = await gateway.get(f"/v1/sessions?userIdentity={user}")
    assert status == 200, found
    [record] = found["data"]
    assert record["channel"] == "chat" and record["status"] == "ended"  # Ctrl-D ended it
    status, transcript = await gateway.get(f"/v1/sessions/{record['roomName']}/transcript")
    assert [s["text"] for s in transcript["segments"] if s["speaker"] == "user"] == [
        "How late are you open?",
        "What is the price?",
    ]


@pytest.mark.one_store
async def test_a_keys_rate_counts_its_messages_and_completions(gateway: Gateway) -> None:
    """Typing is rate-limited per key like starting calls: messages and completions share one
    count of their own; a refused message is not stored and not counted as usage."""
    status, limited, _ = await gateway.post(
        "/v1/keys", {"name": "chat-rate", "scopes": ["sessions:write"], "rateLimitPerMinute": 2}
    )
    assert status == 201, limited
    # Windows are whole minutes of the clock: start early in one, so all of it falls in it.
    if time.time() % 60 > 30:
        await asyncio.sleep(60.5 - time.time() % 60)
    chat = ChatApi(gateway)
    status, session, _ = await chat.create(key=limited["key"], agentId="demo")
    assert status == 201, session  # a start: counted apart from messages
    sid = session["sessionId"]
    for question in ("When are you open?", "What is the price?"):
        status, reply = await chat.send(sid, {"text": question}, key=limited["key"])
        assert status == 200, reply
    typed_before = await usage_messages(gateway, "demo")
    async with gateway.http.post(
        f"{gateway.stack.gateway_url}/v1/chat/sessions/{sid}/messages",
        json={"text": "And on Sundays?"},
        headers={"x-api-key": limited["key"]},
    ) as resp:
        refused = await resp.json()
        assert resp.status == 429 and refused["error"]["code"] == "rate_limited", refused
        assert "message(s)" in refused["error"]["message"]
        assert int(resp.headers["Retry-After"]) > 0
    async with gateway.http.post(
        f"{gateway.stack.gateway_url}/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {limited['key']}"},
    ) as resp:
        refused = await resp.json()
        assert resp.status == 429 and resp.headers["Retry-After"], refused
        assert refused["error"]["code"] == "rate_limited" and refused["error"]["type"]
    status, history = await chat.history(sid, key=limited["key"])
    assert status == 200 and history["meta"]["count"] == 5  # greeting + two turns
    assert await usage_messages(gateway, "demo") == typed_before
    status, ended = await chat.end(sid, key=limited["key"])
    assert status == 200, ended
    status, _payload, _ = await gateway.post(f"/v1/keys/{limited['id']}/revoke")
    assert status == 200
