"""The agent hands the caller to a person: one tool, `escalate_to_human`, for every LLM engine.

A hosted LLM calls it when the caller asks for a person (its description says when); the offline
responder calls it when the caller's words contain one of the agent's escalation phrases
(`asks_for_person`), saying the agent's escalation message in the same turn. The tool waits for
that message to be heard, flushes the transcript and asks the gateway to escalate, which
transfers the call or ends the session `escalated` (voice_gateway/services/handoff.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from livekit.agents import RunContext, function_tool, llm

from voice_common.faq_matcher import normalize_words

log = structlog.get_logger("agent_worker.escalation")

ESCALATE_TOOL = "escalate_to_human"


def asks_for_person(text: str, phrases: Sequence[str]) -> bool:
    """Whole-word phrase match, as the FAQ keywords are matched."""
    words = normalize_words(text)
    for phrase in phrases:
        wanted = normalize_words(phrase)
        n = len(wanted)
        if n and any(words[i : i + n] == wanted for i in range(len(words) - n + 1)):
            return True
    return False


def build_escalation_tool(escalate: Callable[[], Awaitable[None]]) -> llm.FunctionTool[Any, Any]:
    @function_tool(
        name=ESCALATE_TOOL,
        description=(
            "Hand the caller to a human colleague. Call this when the caller asks to speak to "
            "a person, a human, an operator or a representative. Tell them first, in one short "
            "sentence, that you are passing them on."
        ),
    )
    async def escalate_to_human(context: RunContext[None]) -> None:
        context.disallow_interruptions()
        await context.wait_for_playout()
        log.info("escalation_requested")
        await escalate()

    return escalate_to_human
