"""The route a request is counted and logged under: the router's pattern, also for a method the
route does not take (a browser's CORS preflight), and `unmatched` only for a path nothing serves.
Against the real aiohttp app on a SQLite file (nothing here talks to LiveKit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from pydantic import SecretStr

from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings

pytestmark = pytest.mark.unit


@pytest_asyncio.fixture(loop_scope="session")
async def client(tmp_path: Path) -> AsyncIterator[TestClient[object, object]]:
    settings = GatewaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        web_dir=tmp_path / "no-dist",
        reaper_enabled=False,
        livekit_api_secret=SecretStr("s" * 32),
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


def counted(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("voicegw_http_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("method", "path", "route", "status"),
    [
        ("OPTIONS", "/v1/livekit/token", "/v1/livekit/token", 403),  # preflight, unknown origin
        ("GET", "/v1/sessions/start", "/v1/sessions/start", 405),
        ("GET", "/v1/sessions/some-room", "/v1/sessions/{room}", 401),
        ("POST", "/ops", "/{path}", 405),
        ("GET", "/v1/nothing-here", "unmatched", 404),
    ],
)
async def test_requests_are_counted_under_their_route_pattern(
    client: TestClient[object, object], method: str, path: str, route: str, status: int
) -> None:
    before = counted(method, route, status)
    headers = {"Origin": "https://unknown.example", "Access-Control-Request-Method": "POST"}
    resp = await client.request(method, path, headers=headers if method == "OPTIONS" else {})
    assert resp.status == status
    assert counted(method, route, status) == before + 1
