"""One async engine per process; the dialect is the URL, never a code path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from voice_gateway.errors import StoreUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x766F6963  # an arbitrary constant shared by every replica
T = TypeVar("T")
MAX_GROUP_WRITES = 64  # writes one SQLite commit may carry


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """The connection pool (GatewaySettings.database_pool_*). A connection beyond `size` is
    closed when it is returned, which on PostgreSQL means a new server process for the next."""

    size: int = 20
    max_overflow: int = 10
    pre_ping: bool = False


class Database:
    def __init__(self, url: str, pool: PoolSettings = PoolSettings()) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, object] = {
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_pre_ping": pool.pre_ping,
            # Connections are recycled before a server or proxy would drop them idle.
            "pool_recycle": 1800,
        }
        if self.is_sqlite:
            # Kept open too: a connection past the pool is closed on return, and reopening one
            # costs a thread, the file and the pragmas.
            kwargs = {
                "connect_args": {"timeout": 30},
                "pool_size": pool.size,
                "max_overflow": pool.max_overflow,
            }
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite: write_once's transactions run on a plain sqlite3 connection in one thread.
        self._sync_writer: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self._sync_writer = create_engine(
                self.engine.url.set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=1,
                max_overflow=0,
            )
            event.listen(self._sync_writer, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented
            # remedy: the driver issues nothing, the engine BEGINs (IMMEDIATE: it will write).
            event.listen(self._sync_writer, "connect", _driver_autocommit)
            event.listen(self._sync_writer, "begin", _begin_immediate)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._queued: list[_QueuedWrite] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine that talks to the database (for event listeners: tests, tracing)."""
        return [self.engine.sync_engine] + ([self._sync_writer] if self._sync_writer else [])

    async def migrate(self) -> None:
        """Brings the schema to the newest Alembic revision. On PostgreSQL an advisory lock makes
        replicas that start together take turns instead of racing on the same DDL."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            await conn.run_sync(_upgrade_to_head)

    async def ping(self) -> None:
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A transaction; driver errors become StoreUnavailable at this edge. A constraint
        violation is not unavailability: it passes through for the store to interpret."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreUnavailable(f"session store unavailable ({type(exc).__name__})") from None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes. SQLite has one writer: there, this replica's writers queue
        on an asyncio lock instead of meeting SQLite's busy handler, which sleeps 1-100 ms
        between tries; PostgreSQL's row locks need no such queue."""
        if self._write_lock is None:
            async with self.connect() as conn:
                yield conn
            return
        async with self._write_lock, self.connect() as conn:
            yield conn

    async def write_once(self, body: Callable[[Connection], T]) -> T:
        """Runs `body` (synchronous code) as one write transaction, or on SQLite as its own
        SAVEPOINT inside a transaction it shares with the writes queued beside it.

        SQLite has one writer. With aiosqlite each statement of a transaction was a trip to its
        thread and back through the event loop, all under the write lock; under load every trip
        waited its turn in the loop and for the GIL, so /start at c=16 spent ~90% of its time
        queued for that lock while the loop was half idle (BENCHMARKS.md). Here the writes
        waiting at one moment go to a writer thread together, run one after the other (a later
        one sees what an earlier one wrote: the live-session cap and the rate count hold
        exactly) and commit once. What one body raises (a constraint violation, a refusal)
        rolls back its savepoint only and reaches its own caller; a failed commit fails them
        all with StoreUnavailable, and none of them was written. On PostgreSQL it is one
        transaction on a pooled connection, as before."""
        if self._sync_writer is None:
            async with self.connect() as conn:
                return await conn.run_sync(body)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append(_QueuedWrite(body, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="sqlite-group-commit")
        return await future

    async def _drain(self) -> None:
        assert self._write_lock is not None and self._writer_thread is not None
        loop = asyncio.get_running_loop()
        while self._queued:
            batch = self._queued[:MAX_GROUP_WRITES]
            del self._queued[:MAX_GROUP_WRITES]
            bodies = [queued.body for queued in batch]
            try:
                async with self._write_lock:
                    outcomes = await loop.run_in_executor(
                        self._writer_thread, self._write_group, bodies
                    )
            except BaseException as exc:
                for queued in batch:
                    if not queued.future.done():
                        queued.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for queued, outcome in zip(batch, outcomes, strict=True):
                if queued.future.done():  # its caller gave up waiting (the write stands)
                    continue
                if isinstance(outcome, _Raised):
                    queued.future.set_exception(outcome.error)
                else:
                    queued.future.set_result(outcome)

    def _write_group(self, bodies: list[Callable[[Connection], Any]]) -> list[Any]:
        """In the writer thread: each body in its savepoint, one commit for all."""
        assert self._sync_writer is not None
        outcomes: list[Any] = []
        try:
            with self._sync_writer.begin() as conn:
                for body in bodies:
                    try:
                        with conn.begin_nested():
                            outcomes.append(body(conn))
                    except IntegrityError as exc:
                        outcomes.append(_Raised(exc))
                    except (OperationalError, DBAPIError, OSError):
                        raise
                    except Exception as exc:  # the body's own refusal (a rate, a cap)
                        outcomes.append(_Raised(exc))
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreUnavailable(f"session store unavailable ({type(exc).__name__})") from None
        return outcomes

    async def close(self) -> None:
        if self._drainer is not None and not self._drainer.done():
            with contextlib.suppress(Exception):
                await self._drainer  # the writes already queued are written, not dropped
        await self.engine.dispose()
        if self._sync_writer is not None:
            self._sync_writer.dispose()
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=False)


def _upgrade_to_head(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class _QueuedWrite:
    body: Callable[[Connection], Any]
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Raised:
    """What a body of a group raised, for its own caller."""

    error: Exception


def _driver_autocommit(dbapi_conn: object, _record: object) -> None:
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL stays consistent and survives a process crash; only an OS crash or power
    # loss can drop the last commits. FULL would sync the disk on every commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
