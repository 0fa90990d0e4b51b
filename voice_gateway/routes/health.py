"""Liveness and readiness: /readyz answers 503 until LiveKit and the store both answer.

It also says whether an agent worker could take a session now. No free agent capacity is not
"not ready": the gateway must keep receiving LiveKit's webhooks, /end and reads, so a load
balancer must not take it out; /readyz answers 200 "degraded" and names the reason."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voice_gateway.errors import ApiError
from voice_gateway.state import CAPACITY, DATABASE, LIVEKIT, SETTINGS

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
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if ready and request.app[SETTINGS].agent_capacity_check:
        capacity = await request.app[CAPACITY].current()
        checks["agents"] = capacity.describe()
        body["agents"] = capacity.as_json()
        if checks["agents"] != "ok":
            body["status"] = "degraded"
    return web.json_response(body, status=200 if ready else 503)
