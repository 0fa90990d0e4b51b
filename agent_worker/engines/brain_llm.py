"""The livekit-agents LLM adapter over the shared brain (voice_common.brain).

Every LLM engine of the worker is this adapter around a brain engine (the offline responder or an
OpenAI-compatible model), so a spoken question gets the answer the gateway's text channels give a
typed one: same prompt, same FAQ, same history, same client. Brain errors become livekit-agents'
APIError here, at the edge, so the session's retries and error events work as for any plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Never

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    NotGivenOr,
    llm,
    utils,
)

from voice_common.brain import Brain, BrainError, ToolCall, Turn

HEARD_WORDS = "heard_words"
"""ChatMessage.extra key: the recognizer's [word, posterior] pairs for a spoken user turn
(set by agent_worker/listening_agent.py)."""


def heard_words(message: llm.ChatMessage) -> tuple[tuple[str, float], ...]:
    """The posteriors a recognizer gave the message's words; none for typed text (or a
    recognizer that gives none), which then counts as heard for sure."""
    pairs = message.extra.get(HEARD_WORDS) or []
    return tuple((str(word), float(p)) for word, p in pairs)


def turns_of(chat_ctx: llm.ChatContext) -> list[Turn]:
    """The conversation as the brain reads it: user and agent messages with text, a spoken
    user turn with the posteriors of its words. System messages are left out: the brain builds
    the prompt from the agent's config itself."""
    turns: list[Turn] = []
    for item in chat_ctx.items:
        if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
            text = item.text_content
            if not text:
                continue
            if item.role == "user":
                turns.append(Turn(role="user", text=text, heard=heard_words(item)))
            else:
                turns.append(Turn(role="agent", text=text))
    return turns


@dataclass(frozen=True, slots=True)
class Handoff:
    """A turn the adapter answers itself, before the brain: say `message`, then call `tool`."""

    message: str
    tool: str


class BrainLLM(llm.LLM[Never]):
    def __init__(self, brain: Brain, *, provider: str) -> None:
        super().__init__()
        self.brain = brain
        self._provider = provider

    @property
    def model(self) -> str:
        return self.brain.engine.model

    @property
    def provider(self) -> str:
        return self._provider

    def handoff(self, chat_ctx: llm.ChatContext, tool_names: Sequence[str]) -> Handoff | None:
        """A turn answered with a tool call instead of the brain's answer (the offline
        responder's escalation); none by default: a hosted model calls tools itself."""
        return None

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> BrainStream:
        return BrainStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class BrainStream(llm.LLMStream):
    def __init__(
        self,
        adapter: BrainLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(adapter, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._adapter = adapter
        self._brain = adapter.brain

    async def _run(self) -> None:
        request_id = utils.shortuuid("brain_")
        names = llm.tool_context.get_fnc_tool_names(self._tools)
        handoff = self._adapter.handoff(self._chat_ctx, names)
        if handoff is not None:
            call_id = utils.shortuuid("call_")
            call = llm.FunctionToolCall(name=handoff.tool, arguments="{}", call_id=call_id)
            delta = llm.ChoiceDelta(role="assistant", content=handoff.message, tool_calls=[call])
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
            return
        schemas = llm.ToolContext(self._tools).parse_function_tools("openai") if self._tools else []
        reply = self._brain.reply(turns_of(self._chat_ctx), tools=schemas)
        first = True
        try:
            async for piece in reply:
                role = "assistant" if first else None
                first = False
                if isinstance(piece, ToolCall):
                    call = llm.FunctionToolCall(
                        name=piece.name, arguments=piece.arguments, call_id=piece.call_id
                    )
                    delta = llm.ChoiceDelta(role=role, tool_calls=[call])
                else:
                    delta = llm.ChoiceDelta(role=role, content=piece)
                self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
        except BrainError as exc:
            if exc.status is not None:
                raise APIStatusError(
                    exc.message, status_code=exc.status, retryable=exc.retryable
                ) from None
            raise APIConnectionError(exc.message, retryable=exc.retryable) from None
        usage = reply.usage
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=request_id,
                usage=llm.CompletionUsage(
                    completion_tokens=usage.completion_tokens,
                    prompt_tokens=usage.prompt_tokens,
                    total_tokens=usage.total_tokens,
                ),
            )
        )
