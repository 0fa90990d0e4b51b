"""Server-sent events (text/event-stream) for answers that stream: chat replies and
OpenAI-compatible completions, on aiohttp-sse's EventSourceResponse (which also sends the comment
heartbeats, `: ping`, every `heartbeat` seconds while the stream is open).

The answer's headers (status 200, the request id, CORS) go out when the stream opens; from then on
an error can only be an event. A client that goes away mid-stream is noted (`gone`), not raised:
the caller finishes what it was doing (a reply is still stored) without writing to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

MEDIA_TYPE = "text/event-stream"


def wants_event_stream(request: web.Request) -> bool:
    """Whether the client asked for the stream (`Accept: text/event-stream`) over JSON."""
    return any(
        part.split(";")[0].strip().lower() == MEDIA_TYPE
        for part in request.headers.get("Accept", "").split(",")
    )


class Events:
    def __init__(self, response: EventSourceResponse) -> None:
        self.response = response
        self.gone = False

    async def send(
        self, data: str, *, event: str | None = None, event_id: str | None = None
    ) -> None:
        if self.gone:
            return
        try:
            await self.response.send(data, id=event_id, event=event)
        except (ConnectionError, TimeoutError):
            self.gone = True


@asynccontextmanager
async def event_stream(request: web.Request, *, heartbeat: float) -> AsyncIterator[Events]:
    """Opens the stream (our endpoints that stream are POSTs, which aiohttp-sse must be told)."""
    async with sse_response(
        request, allow_all_methods=True, ping_interval=heartbeat, sep="\n"
    ) as response:
        yield Events(response)
