"""Phone numbers and outbound trunks: our record of what LiveKit's SIP side must hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.models import OutboundTrunkRecord, PhoneNumberRecord
from voice_gateway.store.tables import outbound_trunks, phone_numbers


class NumberTaken(Exception):
    pass


class PhoneNumberStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        number_id: str,
        number: str,
        agent_id: str,
        allowed_addresses: tuple[str, ...],
        auth_username: str | None,
        auth_password_encrypted: str | None,
        api_key_id: str | None,
    ) -> PhoneNumberRecord:
        # Checked first: the store turns driver errors (a unique violation too) into
        # StoreUnavailable; the unique index still decides a race between two replicas.
        if await self.by_number(number) is not None:
            raise NumberTaken()
        try:
            async with self._db.connect() as conn:
                await conn.execute(
                    insert(phone_numbers).values(
                        id=number_id,
                        number=number,
                        agent_id=agent_id,
                        allowed_addresses=list(allowed_addresses),
                        auth_username=auth_username,
                        auth_password_encrypted=auth_password_encrypted,
                        api_key_id=api_key_id,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            raise NumberTaken() from None
        record = await self.get(number_id)
        assert record is not None
        return record

    async def get(self, number_id: str) -> PhoneNumberRecord | None:
        return await self._one(phone_numbers.c.id == number_id)

    async def by_number(self, number: str) -> PhoneNumberRecord | None:
        return await self._one(phone_numbers.c.number == number)

    async def by_ready_room(self, room: str) -> PhoneNumberRecord | None:
        return await self._one(phone_numbers.c.ready_room == room)

    async def list(self) -> list[PhoneNumberRecord]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(select(phone_numbers).order_by(phone_numbers.c.created_at))
            ).all()
        return [_number(r) for r in rows]

    async def ready_rooms(self) -> set[str]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(phone_numbers.c.ready_room).where(phone_numbers.c.ready_room.is_not(None))
            )
            return {r[0] for r in rows}

    async def set_livekit_ids(self, number_id: str, **ids: str | None) -> None:
        """trunk_id and/or dispatch_rule_id, as LiveKit named them."""
        async with self._db.connect() as conn:
            await conn.execute(
                update(phone_numbers).where(phone_numbers.c.id == number_id).values(**ids)
            )

    async def replace_ready_room(self, number_id: str, *, old: str | None, new: str) -> bool:
        """Moves the number on to a new ready room, only if `old` is still its ready room: of two
        handlers that saw the same call arrive, exactly one wins."""
        column = phone_numbers.c.ready_room
        still = column.is_(None) if old is None else column == old
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(phone_numbers)
                .where(phone_numbers.c.id == number_id, still)
                .values(ready_room=new)
            )
        return bool(result.rowcount == 1)

    async def delete(self, number_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(delete(phone_numbers).where(phone_numbers.c.id == number_id))

    async def _one(self, where: Any) -> PhoneNumberRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(phone_numbers).where(where))).one_or_none()
        return _number(row) if row else None


class OutboundTrunkStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        trunk_id: str,
        name: str,
        address: str,
        transport: str,
        numbers: tuple[str, ...],
        auth_username: str | None,
        auth_password_encrypted: str | None,
    ) -> OutboundTrunkRecord:
        async with self._db.connect() as conn:
            await conn.execute(
                insert(outbound_trunks).values(
                    id=trunk_id,
                    name=name,
                    address=address,
                    transport=transport,
                    numbers=list(numbers),
                    auth_username=auth_username,
                    auth_password_encrypted=auth_password_encrypted,
                    created_at=now(),
                )
            )
        record = await self.get(trunk_id)
        assert record is not None
        return record

    async def get(self, trunk_id: str) -> OutboundTrunkRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(outbound_trunks).where(outbound_trunks.c.id == trunk_id))
            ).one_or_none()
        return _trunk(row) if row else None

    async def list(self) -> list[OutboundTrunkRecord]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(select(outbound_trunks).order_by(outbound_trunks.c.created_at))
            ).all()
        return [_trunk(r) for r in rows]

    async def set_livekit_id(self, trunk_id: str, livekit_id: str | None) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(outbound_trunks)
                .where(outbound_trunks.c.id == trunk_id)
                .values(trunk_id=livekit_id)
            )

    async def delete(self, trunk_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(delete(outbound_trunks).where(outbound_trunks.c.id == trunk_id))


def _number(row: Row[Any]) -> PhoneNumberRecord:
    return PhoneNumberRecord(
        id=row.id,
        number=row.number,
        agent_id=row.agent_id,
        allowed_addresses=tuple(row.allowed_addresses or ()),
        auth_username=row.auth_username,
        auth_password_encrypted=row.auth_password_encrypted,
        trunk_id=row.trunk_id,
        dispatch_rule_id=row.dispatch_rule_id,
        ready_room=row.ready_room,
        api_key_id=row.api_key_id,
        created_at=utc(row.created_at) or now(),
    )


def _trunk(row: Row[Any]) -> OutboundTrunkRecord:
    return OutboundTrunkRecord(
        id=row.id,
        name=row.name,
        address=row.address,
        transport=row.transport,
        numbers=tuple(row.numbers or ()),
        auth_username=row.auth_username,
        auth_password_encrypted=row.auth_password_encrypted,
        trunk_id=row.trunk_id,
        created_at=utc(row.created_at) or now(),
    )
