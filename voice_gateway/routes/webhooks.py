"""LiveKit's signed webhooks: how the gateway learns of rooms that end without a call to /end."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web
from livekit import api
from livekit.protocol import models

from voice_gateway.errors import InvalidWebhookSignature, LiveKitUnavailable, PayloadTooLarge
from voice_gateway.metrics import LIVEKIT_WEBHOOKS
from voice_gateway.operations import ApiRoutes, Auth, Operation, Raw
from voice_gateway.schemas import _Out
from voice_gateway.state import PHONE_LINES, SESSIONS, SETTINGS

routes = ApiRoutes()
log = structlog.get_logger("voice_gateway.webhooks")


class WebhookAck(_Out):
    ok: bool


LIVEKIT_WEBHOOK = Operation(
    method="POST",
    path="/v1/livekit/webhook",
    summary="Room and participant events from LiveKit, signed with the LiveKit API secret",
    tag="livekit",
    auth=Auth.LIVEKIT,
    raw_body=Raw(
        media_type="application/webhook+json",
        schema={"type": "object", "description": "A LiveKit WebhookEvent (protobuf JSON)"},
    ),
    responses={200: WebhookAck},
    errors=(LiveKitUnavailable,),
)


def _receive(request: web.Request, body: str) -> api.WebhookEvent:
    settings = request.app[SETTINGS]
    receiver = api.WebhookReceiver(
        api.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    )
    token = request.headers.get("Authorization", "")
    if token.lower().startswith("bearer "):
        token = token[7:]
    try:
        if not token:
            raise InvalidWebhookSignature("the webhook carries no signature")
        try:
            # livekit-api raises a bare Exception for a bad token or a body hash mismatch.
            return receiver.receive(body, token.strip())
        except Exception:
            raise InvalidWebhookSignature("the webhook signature is not valid") from None
    except InvalidWebhookSignature:
        LIVEKIT_WEBHOOKS.labels(event="unknown", outcome="invalid_signature").inc()
        raise


@routes.operation(LIVEKIT_WEBHOOK)
async def livekit_webhook(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body = raw.decode()
    except UnicodeDecodeError:
        raise InvalidWebhookSignature("the webhook body is not UTF-8") from None
    if len(raw) > request.app[SETTINGS].max_body_bytes:
        raise PayloadTooLarge("webhook body too large")
    event = _receive(request, body)
    LIVEKIT_WEBHOOKS.labels(event=event.event, outcome="ok").inc()
    sessions = request.app[SESSIONS]
    room = event.room.name
    bound = log.bind(room=room, livekit_event=event.event)
    if event.event == "room_finished":
        ended = await sessions.room_finished(room)
        bound.info("webhook_room_finished", known=ended is not None)
    elif event.event in ("participant_joined", "participant_left"):
        kind = event.participant.kind
        who = "agent" if kind == models.ParticipantInfo.Kind.AGENT else "user"
        # LiveKit's own join stamp, to the millisecond, for the session's setup timeline.
        joined_ms = event.participant.joined_at_ms
        at = (
            datetime.fromtimestamp(joined_ms / 1000, UTC)
            if joined_ms
            else datetime.fromtimestamp(event.created_at or datetime.now(UTC).timestamp(), UTC)
        )
        if event.event == "participant_joined" and kind == models.ParticipantInfo.Kind.SIP:
            # A phone call reached a room: a number's ready room becomes the call's session.
            await request.app[PHONE_LINES].call_arrived(
                room,
                identity=event.participant.identity,
                attributes=dict(event.participant.attributes),
            )
        if event.event == "participant_joined":
            await sessions.participant_joined(room, who=who, at=at)
        else:
            await sessions.participant_left(room, who=who)
        bound.info("webhook_participant", who=who)
    return LIVEKIT_WEBHOOK.reply(WebhookAck(ok=True))
