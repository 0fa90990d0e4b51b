"""What describes and measures the service: /metrics (Prometheus) and /v1/openapi.json."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from voice_gateway.errors import StoreUnavailable
from voice_gateway.metrics import LIVE_SESSIONS
from voice_gateway.operations import ApiRoutes, Auth, Operation, Raw
from voice_gateway.state import SESSION_STORE

log = structlog.get_logger("voice_gateway.metrics")

OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict[str, Any])
# The app whose store /metrics reads when it is served by a separate metrics-only app.
SERVED_APP = web.AppKey("served_app", web.Application)

METRICS = Operation(
    method="GET",
    path="/metrics",
    summary="Prometheus metrics (text format; OpenMetrics when the Accept header asks for it)",
    tag="meta",
    auth=Auth.NONE,
    responses={
        200: Raw(
            media_type="text/plain",
            schema={"type": "string"},
            description="Prometheus exposition format",
        )
    },
)
OPENAPI = Operation(
    method="GET",
    path="/v1/openapi.json",
    summary="This API's OpenAPI 3.1 description, generated from the code",
    tag="meta",
    auth=Auth.NONE,
    responses={
        200: Raw(
            media_type="application/json",
            schema={"type": "object"},
            description="An OpenAPI 3.1 document",
        )
    },
)

openapi_routes = ApiRoutes()
metrics_routes = ApiRoutes()
_seen_live_labels: set[tuple[str, str]] = set()


@openapi_routes.operation(OPENAPI)
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOCUMENT])


@metrics_routes.operation(METRICS)
async def metrics(request: web.Request) -> web.Response:
    await _refresh_live_sessions(request.app.get(SERVED_APP, request.app))
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(REGISTRY), headers={"Content-Type": content_type})


async def _refresh_live_sessions(app: web.Application) -> None:
    """Live sessions are the store's, not this process's: any replica may have started them,
    and another may end them. A label pair that was live once stays at 0, not absent."""
    try:
        counts = await app[SESSION_STORE].live_counts()
    except StoreUnavailable as exc:
        log.warning("live_sessions_unread", error=exc.message)
        return
    _seen_live_labels.update(counts)
    for agent, channel in _seen_live_labels:
        LIVE_SESSIONS.labels(agent=agent, channel=channel).set(counts.get((agent, channel), 0))


def metrics_app(served: web.Application) -> web.Application:
    """/metrics alone, for a listener of its own (VOICEGW_METRICS_PORT)."""
    app = web.Application()
    app[SERVED_APP] = served
    app.add_routes(metrics_routes)
    return app
