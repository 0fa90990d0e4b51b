"""OpenAI-compatible API: `POST /v1/chat/completions` and `GET /v1/models`, where a model is an
agent. OpenAI's clients and SDKs point their base URL at `<gateway>/v1` and pass an API key (a
secret key: these routes are for servers) as their bearer token. Stateless: the caller sends the
conversation, the agent's brain answers it, nothing is stored. Errors are in OpenAI's shape here,
and only here (operations.ErrorShape.OPENAI).
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from voice_common.brain import BrainError, Reply, Turn
from voice_gateway.errors import (
    InvalidRequest,
    LlmUnavailable,
    ModelNotFound,
    RateLimited,
    WrongKeyType,
)
from voice_gateway.metrics import CHAT_FIRST_PIECE, CHAT_MESSAGES
from voice_gateway.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageIn,
    Choice,
    CompletionUsage,
    ModelCard,
    ModelList,
    completion_chunk,
    openai_error,
)
from voice_gateway.operations import ApiRoutes, ErrorShape, Operation, Raw
from voice_gateway.requests import authenticate
from voice_gateway.services.keys import Principal
from voice_gateway.sse import MEDIA_TYPE, event_stream
from voice_gateway.state import CATALOGUE, CHAT, SETTINGS

routes = ApiRoutes()
SCOPE = "sessions:write"
OWNER = "voice-gateway"
# Agents have no creation time of their own; a model's `created` is when this gateway started.
STARTED_AT = int(time.time())

CHUNKS = Raw(
    media_type=MEDIA_TYPE,
    schema={"type": "string"},
    description=(
        'With `"stream": true`: OpenAI\'s `chat.completion.chunk` objects as server-sent '
        "`data:` events (the first with the assistant role, then content deltas, then one with "
        '`finish_reason: "stop"`; with `stream_options.include_usage`, one more with empty '
        "`choices` and the `usage`), ending with `data: [DONE]`. A failure after the stream "
        "opened is one `data:` event holding an OpenAI error object, and no [DONE]."
    ),
)

COMPLETIONS = Operation(
    method="POST",
    path="/v1/chat/completions",
    summary="OpenAI-compatible chat completion: the agent named by `model` answers",
    tag="openai",
    scope=SCOPE,
    body=ChatCompletionRequest,
    responses={200: ChatCompletion},
    alternatives={200: (CHUNKS,)},
    errors=(WrongKeyType, ModelNotFound, RateLimited, LlmUnavailable),
    error_shape=ErrorShape.OPENAI,
)
MODELS = Operation(
    method="GET",
    path="/v1/models",
    summary="OpenAI-compatible model list: the agents this key may use",
    tag="openai",
    scope=SCOPE,
    responses={200: ModelList},
    errors=(WrongKeyType,),
    error_shape=ErrorShape.OPENAI,
)


async def _server_key(request: web.Request) -> Principal:
    """A secret key: these routes are for servers and SDKs. A publishable key is told so
    (wrong_key_type) whether or not it came with one of its origins."""
    principal = await authenticate(request, SCOPE, origin_required=False)
    if principal.publishable:
        raise WrongKeyType(
            "the OpenAI-compatible API takes a secret key (from a server), not a publishable one"
        )
    return principal


def conversation(messages: Sequence[ChatMessageIn]) -> tuple[list[Turn], list[str]]:
    """The turns the brain reads, and the caller's system (or developer) messages, which add to
    the agent's own instructions. Tool messages are left out: the agent offers no tools here."""
    turns: list[Turn] = []
    instructions: list[str] = []
    for m in messages:
        text = m.text()
        if m.role in ("system", "developer"):
            if text.strip():
                instructions.append(text)
        elif m.role == "user":
            turns.append(Turn(role="user", text=text))
        elif m.role == "assistant" and text:
            turns.append(Turn(role="agent", text=text))
    if not messages or messages[-1].role != "user" or not turns[-1].text.strip():
        raise InvalidRequest("messages: the last message must be the user's, with text")
    return turns, instructions


@routes.operation(COMPLETIONS)
async def chat_completions(request: web.Request) -> web.StreamResponse:
    principal = await _server_key(request)
    chat = request.app[CHAT]
    await chat.check_message_rate(principal)
    body = await COMPLETIONS.read_body(request)
    turns, instructions = conversation(body.messages)
    reply = chat.complete_stateless(body.model, turns, extra_instructions=instructions)
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return await _stream(request, reply, body.model, completion_id, created, include_usage)
    started = time.perf_counter()
    try:
        await reply.complete()
    except BrainError as exc:
        CHAT_MESSAGES.labels(body.model, "completions", "failed").inc()
        raise LlmUnavailable(exc.message) from None
    CHAT_FIRST_PIECE.labels(api="completions").observe(time.perf_counter() - started)
    CHAT_MESSAGES.labels(body.model, "completions", "answered").inc()
    return COMPLETIONS.reply(
        ChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[
                Choice(index=0, message=AssistantMessage(content=reply.text), finish_reason="stop")
            ],
            usage=CompletionUsage.of(reply.usage),
        )
    )


async def _stream(
    request: web.Request,
    reply: Reply,
    model: str,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> web.StreamResponse:
    chunk = functools.partial(
        completion_chunk, completion_id=completion_id, created=created, model=model
    )
    heartbeat = request.app[SETTINGS].chat_heartbeat_seconds
    async with event_stream(request, heartbeat=heartbeat) as events:

        async def send(data: dict[str, Any]) -> None:
            await events.send(json.dumps(data, separators=(",", ":"), ensure_ascii=False))

        started = time.perf_counter()
        first = True
        await send(chunk(delta={"role": "assistant", "content": ""}))
        try:
            async for piece in reply:
                if isinstance(piece, str):
                    if first:
                        first = False
                        elapsed = time.perf_counter() - started
                        CHAT_FIRST_PIECE.labels(api="completions").observe(elapsed)
                    await send(chunk(delta={"content": piece}))
        except BrainError as exc:
            CHAT_MESSAGES.labels(model, "completions", "failed").inc()
            await send(openai_error(LlmUnavailable(exc.message)).model_dump())
            return events.response
        CHAT_MESSAGES.labels(model, "completions", "answered").inc()
        await send(chunk(finish=True))
        if include_usage:
            await send(chunk(usage=CompletionUsage.of(reply.usage)))
        await events.send("[DONE]")
    return events.response


@routes.operation(MODELS)
async def list_models(request: web.Request) -> web.Response:
    await _server_key(request)
    catalogue = request.app[CATALOGUE]
    return MODELS.reply(
        ModelList(
            data=[ModelCard(id=i, created=STARTED_AT, owned_by=OWNER) for i in catalogue.ids()]
        )
    )
