"""Outgoing webhooks for integrations: session.started, session.ended and session.escalated,
signed and retried.

Signature: `X-Voicegw-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
timestamp in `X-Voicegw-Timestamp`; receivers should reject stale timestamps to stop replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import structlog

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import ApiError
from voice_gateway.metrics import WEBHOOK_DELIVERIES
from voice_gateway.schemas import SessionView, TranscriptSegmentView
from voice_gateway.store.outbox import OutboundEvent, Outbox, outbox_rows
from voice_gateway.store.sessions import STARTED_EVENT, SessionStore

log = structlog.get_logger("voice_gateway.outgoing_webhooks")

SESSION_STARTED = STARTED_EVENT
SESSION_ENDED = "session.ended"
# How far back the leader looks for sessions whose event was never enqueued.
UNANNOUNCED_HORIZON_S = 600
# The agent asked for a person and no transfer took the caller: a human should follow up.
SESSION_ESCALATED = "session.escalated"
WITH_TRANSCRIPT = frozenset({SESSION_ENDED, SESSION_ESCALATED})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class WebhookSender:
    def __init__(
        self,
        settings: GatewaySettings,
        outbox: Outbox,
        store: SessionStore,
        http: aiohttp.ClientSession,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._store = store
        self._http = http
        # Events the receiver took whose delivery the store could not record yet (it was down):
        # recorded on the next pass, and never sent again meanwhile. Their claim's lease (30 s)
        # outlasts a database restart, so another replica does not send them either.
        self._unrecorded: set[str] = set()

    async def enqueue(self, event_type: str, session_id: str) -> None:
        await self._outbox.write(self.rows(event_type, session_id))

    def rows(self, event_type: str, session_id: str) -> list[dict[str, object]]:
        """The outbox rows of one event, for a caller that writes them in its own transaction."""
        # session.ended waits a moment: the worker's last transcript lines are still on their way.
        delay = self._settings.webhook_ended_delay_seconds if event_type == SESSION_ENDED else 0
        return outbox_rows(
            event_type, session_id, list(self._settings.webhook_urls), delay_seconds=delay
        )

    async def enqueue_unannounced(self) -> int:
        """Enqueues the events a gateway never enqueued: a session's state and its event are two
        writes, and a replica (or its database) may die between them. Run by the reaper's leader
        only; the grace leaves the replica that made the change time to enqueue it itself."""
        if not self._settings.webhook_urls:
            return 0
        count = 0
        for event_type, stamp in ((SESSION_STARTED, "started_at"), (SESSION_ENDED, "ended_at")):
            for session_id in await self._outbox.unannounced(
                event_type,
                stamp=stamp,
                grace_seconds=self._settings.webhook_sweep_grace_seconds,
                horizon_seconds=UNANNOUNCED_HORIZON_S,
            ):
                log.warning("webhook_unannounced", event_type=event_type, session_id=session_id)
                await self.enqueue(event_type, session_id)
                count += 1
        return count

    async def run_forever(self) -> None:
        while True:
            try:
                await self._record_delivered()
                events = await self._outbox.claim_due(
                    limit=20, lease_seconds=30, max_attempts=self._settings.webhook_max_attempts
                )
                await asyncio.gather(*(self._deliver(e) for e in events))
                await self._record_delivered()
            except ApiError as exc:
                log.warning("webhook_pass_failed", error=exc.message)
                events = []
            if not events:
                await asyncio.sleep(self._settings.webhook_poll_seconds)

    async def _record_delivered(self) -> None:
        """Marks what the receivers took as delivered; a store error leaves the rest for the
        next pass (and stops this one)."""
        for event_id in sorted(self._unrecorded):
            await self._outbox.delivered(event_id)
            self._unrecorded.discard(event_id)

    async def _payload(self, event: OutboundEvent) -> dict[str, Any]:
        record = await self._store.get_by_id(event.session_id)
        data: dict[str, Any] = SessionView.of(record, detail=True).dump() if record else {}
        if event.event_type in WITH_TRANSCRIPT and record is not None:
            data["transcript"] = [
                TranscriptSegmentView.of(s).dump() for s in await self._store.transcript(record.id)
            ]
        return {
            "id": event.id,
            "type": event.event_type,
            "createdAt": event.created_at.isoformat(),
            "data": data,
        }

    async def _deliver(self, event: OutboundEvent) -> None:
        body = json.dumps(await self._payload(event)).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Voicegw-Event": event.event_type,
            "X-Voicegw-Delivery": event.id,
            "X-Voicegw-Timestamp": timestamp,
        }
        secret = self._settings.webhook_secret
        if secret is not None:
            headers["X-Voicegw-Signature"] = sign(secret.get_secret_value(), timestamp, body)
        bound = log.bind(
            event_id=event.id, event_type=event.event_type, session_id=event.session_id
        )
        try:
            async with self._http.post(
                event.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                if 200 <= resp.status < 300:
                    WEBHOOK_DELIVERIES.labels(event.event_type, "delivered").inc()
                    self._unrecorded.add(event.id)
                    bound.info("webhook_delivered", status=resp.status)
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
        WEBHOOK_DELIVERIES.labels(event.event_type, "failed").inc()
        attempts = event.attempts + 1
        retry_in = min(300.0, 2.0**attempts)
        await self._outbox.failed(event.id, attempts=attempts, retry_in=retry_in, error=error)
        bound.warning("webhook_failed", attempts=attempts, error=error, retry_in=retry_in)
