"""Liveness and readiness: /readyz answers 503 until LiveKit and the store both answer."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from voice_gateway.errors import ApiError
from voice_gateway.operations import ApiRoutes, Auth, Operation
from voice_gateway.schemas import _Out
from voice_gateway.state import DATABASE, LIVEKIT

routes = ApiRoutes()


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


HEALTHZ = Operation(
    method="GET",
    path="/healthz",
    summary="Liveness: the process answers",
    tag="health",
    auth=Auth.NONE,
    responses={200: Health},
)
READYZ = Operation(
    method="GET",
    path="/readyz",
    summary="Readiness: LiveKit and the store answer (503 with the failing checks otherwise)",
    tag="health",
    auth=Auth.NONE,
    responses={200: Readiness, 503: Readiness},
)


@routes.operation(HEALTHZ)
async def healthz(_request: web.Request) -> web.Response:
    return HEALTHZ.reply(Health(status="ok"))


@routes.operation(READYZ)
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
    return READYZ.reply(
        Readiness(status="ready" if ready else "not_ready", checks=checks),
        status=200 if ready else 503,
    )
