"""The offline responder asks for a person the way a hosted LLM does: it says the agent's
escalation message and calls the escalation tool, when the caller's words ask for a person."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from agent_worker.engines.responder_llm import ResponderLLM
from agent_worker.escalation import ESCALATE_TOOL, asks_for_person, build_escalation_tool
from voice_common.agent_config import AgentConfig

pytestmark = pytest.mark.unit

PHRASES = tuple(AgentConfig().escalation.phrases)


@pytest.mark.parametrize(
    "said",
    [
        "I want an operator",
        "can I talk to a person please",
        "Get me a REPRESENTATIVE.",
        "i need a human",
        "is there a real person there",
    ],
)
def test_ways_of_asking_for_a_person(said: str) -> None:
    assert asks_for_person(said, PHRASES)


@pytest.mark.parametrize(
    "said", ["what are your opening hours", "humane treatment", "personal plan prices"]
)
def test_other_questions_are_not_escalations(said: str) -> None:
    assert not asks_for_person(said, PHRASES)


async def collect(responder: ResponderLLM, text: str, tools: list[llm.Tool]) -> list[llm.ChatChunk]:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content=text)
    chunks = []
    async with responder.chat(chat_ctx=ctx, tools=tools) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


async def test_the_responder_says_the_message_and_calls_the_tool() -> None:
    async def escalate() -> None:
        return None

    responder = ResponderLLM([], "fallback")
    responder.escalate_on(lambda t: asks_for_person(t, PHRASES), "Passing you on.", ESCALATE_TOOL)
    tool = build_escalation_tool(escalate)
    [chunk] = await collect(responder, "I want an operator", [tool])
    assert chunk.delta is not None and chunk.delta.content == "Passing you on."
    assert [c.name for c in chunk.delta.tool_calls] == [ESCALATE_TOOL]

    # Without the tool on offer (escalation disabled), it answers as before.
    chunks = await collect(responder, "I want an operator", [])
    assert [c.delta.content for c in chunks if c.delta] == ["fallback"]
