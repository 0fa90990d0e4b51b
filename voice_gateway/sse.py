"""Server-sent events (text/event-stream) for answers that stream: chat replies and
OpenAI-compatible completions.

The answer's headers (status 200, the request id, CORS) go out when the stream opens; from then on
an error can only be an event. A client that goes away mid-stream is noted (`gone`), not raised:
the caller finishes what it was doing (a reply is still stored) without writing to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final, TypeVar

from aiohttp import web

MEDIA_TYPE = "text/event-stream"
T = TypeVar("T")


class _Heartbeat:
    """Marks a pause of the source long enough for a keep-alive comment."""


HEARTBEAT: Final = _Heartbeat()


def wants_event_stream(request: web.Request) -> bool:
    """Whether the client asked for the stream (`Accept: text/event-stream`) over JSON."""
    return any(
        part.split(";")[0].strip().lower() == MEDIA_TYPE
        for part in request.headers.get("Accept", "").split(",")
    )


async def with_heartbeats(
    source: AsyncIterator[T], interval: float
) -> AsyncIterator[T | _Heartbeat]:
    """The source's items, and HEARTBEAT whenever it stays silent for `interval` seconds (a
    model thinking before its first token), so proxies and clients keep the stream open."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(source))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield HEARTBEAT
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            yield item
            pending = asyncio.ensure_future(anext(source))
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending


class EventStream:
    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx and kin: pass each event on at once
            },
        )
        self.gone = False

    @property
    def response(self) -> web.StreamResponse:
        return self._response

    async def open(self) -> None:
        await self._response.prepare(self._request)

    async def event(self, name: str | None, data: str, *, event_id: str | None = None) -> None:
        lines = [f"event: {name}"] if name else []
        if event_id:
            lines.append(f"id: {event_id}")
        lines += [f"data: {line}" for line in data.split("\n")]
        await self._write("\n".join(lines) + "\n\n")

    async def comment(self, text: str = "heartbeat") -> None:
        await self._write(f": {text}\n\n")

    async def close(self) -> None:
        if not self.gone:
            with contextlib.suppress(ConnectionError):
                await self._response.write_eof()

    async def _write(self, text: str) -> None:
        if self.gone:
            return
        try:
            await self._response.write(text.encode())
        except ConnectionError:
            self.gone = True
