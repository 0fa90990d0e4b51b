"""Wire shapes of the OpenAI-compatible API (/v1/chat/completions, /v1/models): OpenAI's own
snake_case fields, so OpenAI's clients and SDKs work unchanged; a model is an agent id."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voice_common.brain import Usage
from voice_common.brain.turns import MAX_MESSAGE_CHARS
from voice_gateway.errors import ApiError

# The error `type` OpenAI's clients know, by status.
_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


class _OpenAIIn(BaseModel):
    # OpenAI's clients send parameters this API has no use for (temperature, top_p, seed, ...):
    # they are accepted and ignored, as the agent's config decides how it answers.
    model_config = ConfigDict(extra="ignore")


class _OpenAIOut(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class TextPart(_OpenAIIn):
    type: Literal["text"]
    text: str = Field(max_length=MAX_MESSAGE_CHARS)


class ChatMessageIn(_OpenAIIn):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = Field(
        default=None,
        description="Text, or text parts; an assistant message of tool calls may have none",
    )
    name: str | None = Field(default=None, max_length=64)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_OpenAIIn):
    include_usage: bool = False


class ChatCompletionRequest(_OpenAIIn):
    model: str = Field(min_length=1, max_length=64, description="An agent id", examples=["demo"])
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        max_length=256,
        description="The conversation so far, ending with the user's message. System and "
        "developer messages are added to the agent's own instructions.",
    )
    stream: bool = Field(default=False, description="Answer as server-sent events")
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is ever made")
    user: str | None = Field(default=None, max_length=256)


class AssistantMessage(_OpenAIOut):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(_OpenAIOut):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class CompletionUsage(_OpenAIOut):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> CompletionUsage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )


class ChatCompletion(_OpenAIOut):
    """A chat completion"""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None


def completion_chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, str] | None = None,
    finish: bool = False,
    usage: CompletionUsage | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk` of a streamed answer: a delta, the finish, or (choices
    empty) the usage, as OpenAI streams them."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [],
    }
    if usage is not None:
        chunk["usage"] = usage.model_dump()
    else:
        chunk["choices"] = [
            {
                "index": 0,
                "delta": delta or {},
                "logprobs": None,
                "finish_reason": "stop" if finish else None,
            }
        ]
    return chunk


class ModelCard(_OpenAIOut):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(_OpenAIOut):
    """The agents this key may use, as models"""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(_OpenAIOut):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, ...")
    param: str | None
    code: str = Field(description="The gateway's stable error code")


class OpenAIErrorResponse(_OpenAIOut):
    error: OpenAIErrorDetail


def openai_error(exc: ApiError) -> OpenAIErrorResponse:
    default = "api_error" if exc.status >= 500 else "invalid_request_error"
    return OpenAIErrorResponse(
        error=OpenAIErrorDetail(
            message=exc.message,
            type=_ERROR_TYPES.get(exc.status, default),
            param=None,
            code=exc.code,
        )
    )
