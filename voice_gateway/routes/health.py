"""Liveness and readiness: /readyz answers 503 until LiveKit and the store both answer."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.errors import ApiError
from voice_gateway.state import DATABASE, LIVEKIT

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await request.app[DATABASE].ping()
        checks["store"] = "ok"
    except ApiError as exc:
        checks["store"] = exc.message
    try:
        await request.app[LIVEKIT].list_rooms(["readyz-probe"])
        checks["livekit"] = "ok"
    except ApiError as exc:
        checks["livekit"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )
