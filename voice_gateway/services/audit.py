"""Audit entries as the services make them; the request id comes from the log context.

Key changes are audited in the same transaction as the change (store/keys.py). Session starts and
ends, and the phone API's changes, are audited after the fact and best-effort: the rows already
tell the truth, and a missing audit row must not turn a done change into an error for the caller.
"""

from __future__ import annotations

from typing import Any

import structlog

from voice_gateway.errors import StoreUnavailable
from voice_gateway.store.audit import (
    SESSION_ENDED,
    SESSION_STARTED,
    AuditEntry,
    AuditEvent,
    AuditStore,
)
from voice_gateway.store.models import SessionRecord

log = structlog.get_logger("voice_gateway.audit")


def audit_entry(
    event: str,
    *,
    key_id: str | None,
    actor_key_id: str | None = None,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return AuditEntry(
        event=event,
        key_id=key_id,
        actor_key_id=actor_key_id,
        session_id=session_id,
        request_id=str(request_id) if request_id else None,
        details=details or {},
    )


class SessionAudit:
    """Sessions' starts and ends, and what the phone API changes (numbers, trunks, calls placed,
    transfers): best-effort, after the change."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def record(
        self,
        event: AuditEvent,
        *,
        actor_key_id: str | None,
        key_id: str | None = None,
        session_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._write(
            audit_entry(
                event,
                key_id=key_id,
                actor_key_id=actor_key_id,
                session_id=session_id,
                details=details,
            )
        )

    async def started(self, record: SessionRecord) -> None:
        await self._write(
            audit_entry(
                SESSION_STARTED,
                key_id=record.api_key_id,
                actor_key_id=record.api_key_id,
                session_id=record.id,
                details={"agentId": record.agent_id, "roomName": record.room_name},
            )
        )

    async def ended(self, record: SessionRecord, *, actor_key_id: str | None = None) -> None:
        """`actor_key_id` is the key that asked for the end; None when LiveKit or the reaper did."""
        await self._write(
            audit_entry(
                SESSION_ENDED,
                key_id=record.api_key_id,
                actor_key_id=actor_key_id,
                session_id=record.id,
                details={
                    "roomName": record.room_name,
                    "status": record.status.value,
                    "endReason": record.end_reason,
                },
            )
        )

    async def _write(self, entry: AuditEntry) -> None:
        try:
            await self._store.record(entry)
        except StoreUnavailable as exc:
            log.warning(
                "audit_write_failed",
                audit_event=entry.event,
                session_id=entry.session_id,
                error=exc.message,
            )
