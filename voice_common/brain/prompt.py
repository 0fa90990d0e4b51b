"""The prompt every engine sees: the agent's instructions and FAQ, then the conversation.

Built here once, so a spoken question and a typed one reach a hosted model with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voice_common.agent_config import AgentConfig, FaqItem
from voice_common.brain.turns import Turn

FAQ_HEADER = (
    "Facts you know. When the question is about one of them, answer from it; "
    "when you do not know, say so briefly:"
)
_OPENAI_ROLE = {"user": "user", "agent": "assistant"}


def system_prompt(config: AgentConfig) -> str:
    """The agent's instructions, then its FAQ as facts (a hosted model answers from them the
    way the offline responder does)."""
    if not config.faq:
        return config.instructions
    facts = "\n".join(f"- {_topic(item)}: {item.answer}" for item in config.faq)
    return f"{config.instructions}\n\n{FAQ_HEADER}\n{facts}"


def _topic(item: FaqItem) -> str:
    return item.questions[0] if item.questions else ", ".join(item.keywords)


def openai_messages(
    system: str, turns: Sequence[Turn], extra_instructions: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The chat-completions `messages` for the conversation so far."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [{"role": "system", "content": text} for text in extra_instructions]
    messages += [{"role": _OPENAI_ROLE[t.role], "content": t.text} for t in turns]
    return messages


def last_user_turn(turns: Sequence[Turn]) -> Turn | None:
    for turn in reversed(turns):
        if turn.role == "user":
            return turn
    return None


def last_user_text(turns: Sequence[Turn]) -> str | None:
    turn = last_user_turn(turns)
    return None if turn is None else turn.text
