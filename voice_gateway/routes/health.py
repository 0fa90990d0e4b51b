"""Liveness and readiness: /readyz answers 503 until LiveKit and the store both answer.

It also says whether an agent worker could take a session now. No free agent capacity is not
"not ready": the gateway must keep receiving LiveKit's webhooks, /end and reads, so a load
balancer must not take it out; /readyz answers 200 "degraded" and names the reason."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from voice_gateway.errors import ApiError
from voice_gateway.operations import ApiRoutes, Auth, Operation
from voice_gateway.schemas import _Out
from voice_gateway.state import CAPACITY, DATABASE, LIVEKIT, SETTINGS

routes = ApiRoutes()


class Health(_Out):
    status: Literal["ok"]


class AgentCapacityView(_Out):
    """Agent workers that reported recently, and their free slots."""

    agent_name: str
    workers: int
    draining: int
    full: int
    free_slots: int


class Readiness(_Out):
    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, str]
    agents: AgentCapacityView | None = None


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
    summary="Readiness: LiveKit and the store answer (503 with the failing checks otherwise); "
    "no free agent capacity is 200 degraded",
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
    if not all(v == "ok" for v in checks.values()):
        return READYZ.reply(Readiness(status="not_ready", checks=checks), status=503)
    if not request.app[SETTINGS].agent_capacity_check:
        return READYZ.reply(Readiness(status="ready", checks=checks))
    capacity = await request.app[CAPACITY].current()
    checks["agents"] = capacity.describe()
    agents = AgentCapacityView(
        agent_name=capacity.agent_name,
        workers=len(capacity.workers),
        draining=capacity.draining,
        full=capacity.full,
        free_slots=capacity.free_slots,
    )
    status: Literal["ready", "degraded"] = "ready" if capacity.free_slots else "degraded"
    return READYZ.reply(Readiness(status=status, checks=checks, agents=agents))
