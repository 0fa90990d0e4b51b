"""Chat sessions: text with the same agent, no WebRTC needed.

`POST /v1/chat/sessions` opens one; `POST .../messages` answers as JSON, or with `Accept:
text/event-stream` as server-sent events (`message.delta`, `message.completed`, `error`, and
comment heartbeats while the model is silent); `GET .../messages` is the history; `POST .../end`
ends it. Publishable keys may use them from their origins (CORS), on the sessions they started.
"""

from __future__ import annotations

import json

import structlog
from aiohttp import web

from voice_gateway.chat_schemas import (
    SESSION_ID_PARAM,
    ChatHistoryView,
    ChatMessageView,
    ChatReplyView,
    ChatSessionView,
    CreateChatSessionRequest,
    MessageDelta,
    SendMessageRequest,
)
from voice_gateway.errors import (
    AgentNotFound,
    LlmUnavailable,
    RateLimited,
    ReplyInProgress,
    SessionEnded,
    SessionNotFound,
)
from voice_gateway.middlewares import REQUEST_ID, error_body
from voice_gateway.operations import ApiRoutes, Operation, Raw
from voice_gateway.schemas import CountMeta, SessionView
from voice_gateway.services.chat import Completed, Failed, PendingReply
from voice_gateway.sse import MEDIA_TYPE, event_stream, wants_event_stream
from voice_gateway.state import CHAT, SESSIONS, SETTINGS

log = structlog.get_logger("voice_gateway.chat")

routes = ApiRoutes()
SCOPE = "sessions:write"
SESSION_PARAMS = {"session_id": SESSION_ID_PARAM}

DELTA, COMPLETED, ERROR = "message.delta", "message.completed", "error"
EVENT_STREAM = Raw(
    media_type=MEDIA_TYPE,
    schema={"type": "string"},
    description=(
        "With `Accept: text/event-stream`: the reply as server-sent events. "
        f"`{DELTA}`: data `{{messageId, delta}}`, the next piece of the reply's text; "
        f"`{COMPLETED}`: data a ChatMessageView, the whole reply, stored (its `id:` line is the "
        f"message id); `{ERROR}`: data an ErrorResponse (e.g. `llm_unavailable`), after which "
        "the stream ends and nothing is stored. Comment lines (`: ping`, every "
        "`VOICEGW_CHAT_HEARTBEAT_SECONDS`) keep the stream open while the model is silent. "
        "Errors found before the stream opens (auth, bad input, unknown or ended session) are "
        "JSON answers with their status, as without the header."
    ),
)

CREATE = Operation(
    method="POST",
    path="/v1/chat/sessions",
    summary="Open a text-only chat session with an agent (no WebRTC); its greeting comes back",
    tag="chat",
    scope=SCOPE,
    body=CreateChatSessionRequest,
    responses={201: ChatSessionView},
    errors=(AgentNotFound, RateLimited, LlmUnavailable),
)
SEND = Operation(
    method="POST",
    path="/v1/chat/sessions/{session_id}/messages",
    summary="Send a message; the agent's reply as JSON, or streamed as server-sent events",
    tag="chat",
    scope=SCOPE,
    path_params=SESSION_PARAMS,
    body=SendMessageRequest,
    responses={200: ChatReplyView},
    alternatives={200: (EVENT_STREAM,)},
    errors=(SessionNotFound, SessionEnded, ReplyInProgress, RateLimited, LlmUnavailable),
)
HISTORY = Operation(
    method="GET",
    path="/v1/chat/sessions/{session_id}/messages",
    summary="A chat session's messages, oldest first",
    tag="chat",
    scope=SCOPE,
    path_params=SESSION_PARAMS,
    responses={200: ChatHistoryView},
    errors=(SessionNotFound,),
)
END = Operation(
    method="POST",
    path="/v1/chat/sessions/{session_id}/end",
    summary="End a chat session (idempotent)",
    tag="chat",
    scope=SCOPE,
    path_params=SESSION_PARAMS,
    responses={200: SessionView},
    errors=(SessionNotFound,),
)


@routes.operation(CREATE)
async def create_chat_session(request: web.Request) -> web.Response:
    principal = await CREATE.authenticate(request)
    # Counted in the start's one write, or on its way out when refused before it (see
    # SessionService.rate_counted), like a web start.
    async with request.app[SESSIONS].rate_counted(principal) as rate:
        body = await CREATE.read_body(request)
        record, greeting = await request.app[CHAT].open(
            principal=principal,
            agent_id=body.agent_id,
            user_identity=body.user_identity,
            overrides=body.agent_config,
            rate=rate,
        )
    return CREATE.reply(ChatSessionView.of(record, greeting), status=201)


@routes.operation(SEND)
async def send_message(request: web.Request) -> web.StreamResponse:
    principal = await SEND.authenticate(request)
    chat = request.app[CHAT]
    await chat.check_message_rate(principal)
    body = await SEND.read_body(request)
    pending = await chat.begin(principal, request.match_info["session_id"], body.text)
    if wants_event_stream(request):
        return await _stream_reply(request, pending)
    async for event in pending.events():
        if isinstance(event, Failed):
            raise event.error
        if isinstance(event, Completed):
            return SEND.reply(
                ChatReplyView(
                    session_id=pending.record.id,
                    user_message=ChatMessageView.of(pending.user),
                    message=ChatMessageView.of(event.message),
                )
            )
    raise AssertionError("a reply ends with Completed or Failed")


async def _stream_reply(request: web.Request, pending: PendingReply) -> web.StreamResponse:
    """The reply as events. Once the stream is open a failure is an `error` event; a client
    that leaves mid-stream does not stop the reply, which is still stored."""
    heartbeat = request.app[SETTINGS].chat_heartbeat_seconds
    async with event_stream(request, heartbeat=heartbeat) as events:
        async for event in pending.events():
            if isinstance(event, str):
                delta = MessageDelta(message_id=pending.message_id, delta=event)
                await events.send(_json(delta.model_dump(by_alias=True)), event=DELTA)
            elif isinstance(event, Completed):
                view = ChatMessageView.of(event.message).model_dump(by_alias=True, mode="json")
                await events.send(_json(view), event=COMPLETED, event_id=event.message.id)
            else:
                body = error_body(event.error, request[REQUEST_ID])
                await events.send(_json(body.model_dump(by_alias=True, mode="json")), event=ERROR)
    return events.response


@routes.operation(HISTORY)
async def chat_history(request: web.Request) -> web.Response:
    principal = await HISTORY.authenticate(request)
    record, messages = await request.app[CHAT].history(principal, request.match_info["session_id"])
    return HISTORY.reply(
        ChatHistoryView(
            session_id=record.id,
            status=record.status,
            data=[ChatMessageView.of(m) for m in messages],
            meta=CountMeta(count=len(messages)),
        )
    )


@routes.operation(END)
async def end_chat_session(request: web.Request) -> web.Response:
    principal = await END.authenticate(request)
    record = await request.app[CHAT].end(principal, request.match_info["session_id"])
    return END.reply(SessionView.of(record))


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
