"""Agent workers' capacity reports, one row per worker, shared by every gateway replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.models import WorkerReport, WorkerState
from voice_gateway.store.tables import agent_workers


class WorkerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def report(self, state: WorkerState) -> None:
        """One upsert per report; the time is the gateway's, so workers' clocks do not matter."""
        at = now()
        values = {
            "id": state.worker_id,
            "agent_name": state.agent_name,
            "live_sessions": state.live_sessions,
            "max_sessions": state.max_sessions,
            "draining": state.draining,
            "first_seen_at": at,
            "last_seen_at": at,
        }
        async with self._db.connect() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(agent_workers).values(**values)
            changed = {k: v for k, v in values.items() if k not in ("id", "first_seen_at")}
            await conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed))

    async def seen_since(self, agent_name: str, since: datetime) -> list[WorkerReport]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(agent_workers)
                    .where(
                        agent_workers.c.agent_name == agent_name,
                        agent_workers.c.last_seen_at >= since,
                    )
                    .order_by(agent_workers.c.id)
                )
            ).all()
        return [
            WorkerReport(
                worker_id=r.id,
                agent_name=r.agent_name,
                live_sessions=r.live_sessions,
                max_sessions=r.max_sessions,
                draining=r.draining,
                last_seen_at=utc(r.last_seen_at) or now(),
            )
            for r in rows
        ]

    async def forget_before(self, before: datetime) -> int:
        async with self._db.connect() as conn:
            result = await conn.execute(
                delete(agent_workers).where(agent_workers.c.last_seen_at < before)
            )
        return int(result.rowcount or 0)
