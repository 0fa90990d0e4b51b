"""An integration that already speaks OpenAI points the official `openai` client at the gateway:
an agent is a model, a gateway key is the API key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio
import requests
from sseclient import SSEClient

from devstack.stack import Stack
from tests.e2e.chat import publishable_key
from tests.e2e.conftest import Gateway
from tests.e2e.test_chat_sessions import PRICE_ANSWER
from tests.e2e.test_voice_session import HOURS_ANSWER

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

CONTACT_ANSWER = "You can email our team at help at example dot com, or call them on weekdays."


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key=stack.api_key, max_retries=0, timeout=60
    )
    yield c
    await c.close()


async def test_a_completion_answers_from_the_agents_faq(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "What time do you open?"}]
    )
    assert completion.object == "chat.completion" and completion.model == "demo"
    assert completion.id.startswith("chatcmpl-")
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == HOURS_ANSWER
    usage = completion.usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    # The conversation the caller sends is the history; its system message adds instructions.
    completion = await client.chat.completions.create(
        model="demo",
        messages=[
            {"role": "system", "content": "Answer politely."},
            {"role": "user", "content": "Where are you located?"},
            {"role": "assistant", "content": "Our office is at twelve Main Street."},
            {"role": "user", "content": [{"type": "text", "text": "How can I contact you?"}]},
        ],
        temperature=0.2,  # OpenAI's tuning parameters are accepted and left to the agent
    )
    assert completion.choices[0].message.content == CONTACT_ANSWER


async def test_a_streamed_completion_adds_up_and_reports_usage(
    client: openai.AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "How much is the basic plan?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == PRICE_ANSWER
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None and usage.total_tokens > 0


async def test_the_stream_ends_with_done_on_the_wire(stack: Stack) -> None:
    """What the client library hides: OpenAI's wire format, read by a plain SSE parser."""

    def read() -> list[str]:
        with requests.post(
            f"{stack.gateway_url}/v1/chat/completions",
            json={"model": "demo", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {stack.api_key}"},
            stream=True,
            timeout=60,
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return [e.data for e in SSEClient(resp.iter_content(chunk_size=None)).events()]

    data = await asyncio.to_thread(read)
    assert data[-1] == "[DONE]" and len(data) >= 4


async def test_models_are_the_agents(client: openai.AsyncOpenAI) -> None:
    models = [m async for m in client.models.list()]
    assert [m.id for m in models] == ["demo", "support"]
    assert {m.object for m in models} == {"model"}


async def test_errors_come_in_openais_shape(
    client: openai.AsyncOpenAI, stack: Stack, gateway: Gateway
) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await client.chat.completions.create(
            model="no-such-agent", messages=[{"role": "user", "content": "hello"}]
        )
    error = not_found.value
    assert error.status_code == 404 and error.code == "model_not_found"
    assert error.type == "invalid_request_error"
    assert error.body == {
        "message": "The model `no-such-agent` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    assert error.response.headers["X-Request-Id"]

    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="demo",
            messages=[
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
            ],
        )
    assert bad.value.code == "invalid_request"

    anonymous = openai.AsyncOpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key="vgw_sk_not-a-key", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as denied:
        await anonymous.models.list()
    assert denied.value.code == "invalid_api_key"
    await anonymous.close()

    # A publishable key belongs in a web page, not in a server's SDK.
    page_key = await publishable_key(gateway, "openai-page", "https://shop.example.com")
    browserish = openai.AsyncOpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key=page_key["key"], max_retries=0
    )
    with pytest.raises(openai.PermissionDeniedError) as wrong:
        await browserish.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hello"}]
        )
    assert wrong.value.code == "wrong_key_type"
    await browserish.close()
    status, _payload, _ = await gateway.post(f"/v1/keys/{page_key['id']}/revoke")
    assert status == 200
