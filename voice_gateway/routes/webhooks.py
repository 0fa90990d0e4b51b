"""LiveKit's signed webhooks: how the gateway learns of rooms that end without a call to /end."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web
from livekit import api
from livekit.protocol import models

from voice_gateway.errors import InvalidWebhookSignature, PayloadTooLarge
from voice_gateway.state import PHONE_LINES, SESSIONS, SETTINGS

routes = web.RouteTableDef()
log = structlog.get_logger("voice_gateway.webhooks")


def _receive(request: web.Request, body: str) -> api.WebhookEvent:
    settings = request.app[SETTINGS]
    receiver = api.WebhookReceiver(
        api.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    )
    token = request.headers.get("Authorization", "")
    if token.lower().startswith("bearer "):
        token = token[7:]
    if not token:
        raise InvalidWebhookSignature("the webhook carries no signature")
    try:
        # livekit-api raises a bare Exception for a bad token or a body hash mismatch.
        return receiver.receive(body, token.strip())
    except Exception:
        raise InvalidWebhookSignature("the webhook signature is not valid") from None


@routes.post("/v1/livekit/webhook")
async def livekit_webhook(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body = raw.decode()
    except UnicodeDecodeError:
        raise InvalidWebhookSignature("the webhook body is not UTF-8") from None
    if len(raw) > request.app[SETTINGS].max_body_bytes:
        raise PayloadTooLarge("webhook body too large")
    event = _receive(request, body)
    sessions = request.app[SESSIONS]
    room = event.room.name
    bound = log.bind(room=room, livekit_event=event.event)
    if event.event == "room_finished":
        ended = await sessions.room_finished(room)
        bound.info("webhook_room_finished", known=ended is not None)
    elif event.event in ("participant_joined", "participant_left"):
        kind = event.participant.kind
        who = "agent" if kind == models.ParticipantInfo.Kind.AGENT else "user"
        at = datetime.fromtimestamp(event.created_at or datetime.now(UTC).timestamp(), UTC)
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
    return web.json_response({"ok": True})
