"""The shared brain: one prompt, one responder, one OpenAI-compatible client, whether the gateway
answers a typed message or the worker's LLM adapter a spoken one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit.agents import APIStatusError, llm

from agent_worker.engines.brain_llm import BrainLLM
from agent_worker.engines.responder_llm import ResponderLLM
from tests.unit.fake_llm import FakeLLM, Script
from voice_common.agent_config import AgentConfig, FaqItem
from voice_common.brain import Brain, BrainConfigError, BrainError, ToolCall, Turn, engine_for
from voice_common.brain.openai_compat import OpenAICompatible
from voice_common.brain.prompt import FAQ_HEADER

pytestmark = pytest.mark.unit

HOURS = "We are open nine to five. On weekends we close at noon!"
CONFIG = AgentConfig(
    instructions="You are the shop's agent.",
    faq=[
        FaqItem(keywords=["hours", "open"], questions=["When are you open?"], answer=HOURS),
        FaqItem(keywords=["price", "cost"], answer="Ten dollars."),
    ],
    fallback="Say that again?",
)
CONVERSATION = [
    Turn("agent", "Hello!"),
    Turn("user", "What does it cost?"),
    Turn("agent", "Ten dollars."),
    Turn("user", "And when are you open?"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def fake_llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM()
    async with fake.running():
        yield fake


def hosted(fake: FakeLLM) -> AgentConfig:
    return CONFIG.model_copy(update={"llm": "openai:test-model", "llm_base_url": fake.base_url})


def test_the_prompt_is_the_instructions_then_the_faq_then_the_conversation() -> None:
    brain = Brain(CONFIG, engine_for(CONFIG, api_keys={}))
    messages = brain.request(CONVERSATION, extra_instructions=["Be terse."]).messages
    system = messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are the shop's agent.")
    assert FAQ_HEADER in system["content"]
    assert f"- When are you open?: {HOURS}" in system["content"]
    assert "- price, cost: Ten dollars." in system["content"]
    assert messages[1] == {"role": "system", "content": "Be terse."}
    assert [(m["role"], m["content"]) for m in messages[2:]] == [
        ("assistant", "Hello!"),
        ("user", "What does it cost?"),
        ("assistant", "Ten dollars."),
        ("user", "And when are you open?"),
    ]


async def test_the_responder_streams_the_faq_answer_to_the_last_user_turn() -> None:
    brain = Brain(CONFIG, engine_for(CONFIG, api_keys={}))
    reply = brain.reply(CONVERSATION)
    pieces = [p async for p in reply]
    assert pieces == ["We are open nine to five. ", "On weekends we close at noon!"]
    assert reply.text == HOURS and reply.done
    assert reply.usage.completion_tokens == 14  # words and punctuation
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 14
    unknown = await brain.reply([Turn("user", "Tell me a joke")]).complete()
    assert unknown.text == "Say that again?"


def test_an_engine_that_cannot_be_built_says_why_without_a_key() -> None:
    with pytest.raises(BrainConfigError, match="OPENAI_API_KEY"):
        engine_for(CONFIG.model_copy(update={"llm": "openai:gpt-4o-mini"}), api_keys={})
    with pytest.raises(BrainConfigError, match="no ':model'"):
        engine_for(CONFIG.model_copy(update={"llm": "responder:x"}), api_keys={})
    engine = engine_for(
        CONFIG.model_copy(update={"llm": "openai:gpt-4o-mini"}), api_keys={"openai": "sk-1234"}
    )
    assert isinstance(engine, OpenAICompatible) and "sk-1234" not in repr(engine)


async def test_a_hosted_model_streams_text_tool_calls_and_its_usage(fake_llm: FakeLLM) -> None:
    fake_llm.script = Script(
        pieces=["Nine ", "to five."], tool_call=("escalate_to_human", '{"why": "asked"}')
    )
    config = hosted(fake_llm)
    brain = Brain(config, engine_for(config, api_keys={"openai": "sk-test"}))
    tool = {"type": "function", "function": {"name": "escalate_to_human", "parameters": {}}}
    reply = brain.reply(CONVERSATION, tools=[tool])
    pieces = [p async for p in reply]
    assert pieces[:2] == ["Nine ", "to five."]
    assert pieces[2] == ToolCall("call_1", "escalate_to_human", '{"why": "asked"}')
    assert reply.text == "Nine to five."
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 3)
    sent = fake_llm.requests[-1]
    assert sent["model"] == "test-model" and sent["stream"] is True
    assert sent["messages"] == brain.request(CONVERSATION).messages
    assert sent["tools"] == [tool]
    assert fake_llm.headers[-1]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (429, True), (500, True)])
async def test_a_refusing_model_is_a_brain_error_without_its_text(
    fake_llm: FakeLLM, status: int, retryable: bool
) -> None:
    fake_llm.script = Script(status=status)
    config = hosted(fake_llm)
    brain = Brain(config, engine_for(config, api_keys={"openai": "sk-test"}))
    with pytest.raises(BrainError) as caught:
        await brain.reply(CONVERSATION).complete()
    assert caught.value.status == status and caught.value.retryable is retryable
    assert "sk-secret-echo" not in caught.value.message  # the vendor's text is never repeated


async def test_an_unreachable_model_is_a_retryable_brain_error() -> None:
    config = CONFIG.model_copy(
        update={"llm": "openai:test-model", "llm_base_url": "http://127.0.0.1:9/v1"}
    )
    brain = Brain(config, engine_for(config, api_keys={"openai": "sk-test"}))
    with pytest.raises(BrainError) as caught:
        await brain.reply(CONVERSATION).complete()
    assert caught.value.retryable and caught.value.status is None


def chat_ctx_of(turns: list[Turn]) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content="livekit-agents' own instructions, not the brain's")
    for t in turns:
        ctx.add_message(role="user" if t.role == "user" else "assistant", content=t.text)
    return ctx


async def test_the_worker_adapter_sends_the_model_what_the_gateway_sends(
    fake_llm: FakeLLM,
) -> None:
    """One brain, two media: the worker's LLM engine asks the hosted model with exactly the
    request the gateway's text channels make for the same conversation."""
    fake_llm.script = Script(pieces=["Nine ", "to five."], tool_call=("escalate_to_human", "{}"))
    config = hosted(fake_llm)
    brain = Brain(config, engine_for(config, api_keys={"openai": "sk-test"}))
    await brain.reply(CONVERSATION).complete()
    from_gateway = fake_llm.requests[-1]

    adapter = BrainLLM(brain, provider="openai")
    chunks = [c async for c in adapter.chat(chat_ctx=chat_ctx_of(CONVERSATION))]
    from_worker = fake_llm.requests[-1]
    assert from_worker == from_gateway
    text = "".join(c.delta.content or "" for c in chunks if c.delta)
    calls = [call for c in chunks if c.delta for call in c.delta.tool_calls]
    assert text == "Nine to five."
    assert [(c.name, c.arguments) for c in calls] == [("escalate_to_human", "{}")]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 24
    await adapter.aclose()


async def test_the_worker_adapter_reports_a_failing_model_as_livekit_does(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script = Script(status=401)
    config = hosted(fake_llm)
    adapter = BrainLLM(Brain(config, engine_for(config, api_keys={"openai": "x"})), provider="o")
    with pytest.raises(APIStatusError) as caught:
        async for _ in adapter.chat(chat_ctx=chat_ctx_of(CONVERSATION)):
            pass
    assert caught.value.status_code == 401 and not caught.value.retryable
    await adapter.aclose()


async def test_the_offline_responder_answers_voice_as_it_answers_text() -> None:
    responder = ResponderLLM(CONFIG.faq, CONFIG.fallback, config=CONFIG)
    spoken = await responder.chat(chat_ctx=chat_ctx_of(CONVERSATION)).collect()
    typed = await Brain(CONFIG, engine_for(CONFIG, api_keys={})).reply(CONVERSATION).complete()
    assert spoken.text == typed.text == HOURS
    assert responder.brain.instructions == Brain(CONFIG, responder.brain.engine).instructions
