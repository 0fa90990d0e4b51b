"""The audit trail (scope keys:write): who (a key id, never a key) did what, when, to which key
or session; filtered and paged like the sessions list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from voice_gateway.operations import ApiRoutes, Operation
from voice_gateway.pagination import decode_cursor, page_of
from voice_gateway.schemas import PageMeta, Timestamp, _In, _Out
from voice_gateway.state import AUDIT_STORE
from voice_gateway.store.audit import AuditEvent, AuditQuery, AuditRecord

routes = ApiRoutes()


class AuditListQuery(_In):
    event: list[AuditEvent] = Field(default_factory=list)
    key_id: str | None = Field(
        default=None, min_length=1, max_length=40, description="The key acted on or used"
    )
    actor_key_id: str | None = Field(
        default=None, min_length=1, max_length=40, description="The key that made the request"
    )
    session_id: str | None = Field(default=None, min_length=1, max_length=40)
    since: Timestamp | None = None
    until: Timestamp | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)


class AuditEventView(_Out):
    id: int
    occurred_at: datetime
    event: AuditEvent
    key_id: str | None = Field(description="The key acted on, or the session's key")
    actor_key_id: str | None = Field(
        description="The key that asked; null when LiveKit, the reaper or the gateway did"
    )
    session_id: str | None
    request_id: str | None
    details: dict[str, Any] | None

    @classmethod
    def of(cls, r: AuditRecord) -> AuditEventView:
        return cls.model_validate(r, from_attributes=True)


class AuditPage(_Out):
    data: list[AuditEventView]
    meta: PageMeta


LIST = Operation(
    method="GET",
    path="/v1/audit",
    summary="The audit trail, newest first: key changes and session starts and ends",
    tag="audit",
    scope="keys:write",
    query=AuditListQuery,
    responses={200: AuditPage},
)


def _position(cursor: str) -> tuple[datetime, int]:
    at, row_id = decode_cursor(cursor, numeric_id=True)
    return at, int(row_id)


@routes.operation(LIST)
async def list_audit(request: web.Request) -> web.Response:
    await LIST.authenticate(request)
    q = LIST.read_query(request)
    records = await request.app[AUDIT_STORE].query(
        AuditQuery(
            events=tuple(q.event),
            key_id=q.key_id,
            actor_key_id=q.actor_key_id,
            session_id=q.session_id,
            since=q.since,
            until=q.until,
            after=_position(q.cursor) if q.cursor else None,
            limit=q.limit + 1,
        )
    )
    page, meta = page_of(records, q.limit, lambda r: (r.occurred_at, r.id))
    return LIST.reply(AuditPage(data=[AuditEventView.of(r) for r in page], meta=meta))
