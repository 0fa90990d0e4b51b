"""The page the gateway serves at `/`, its config document, and the key that page holds, against
the real aiohttp app on a SQLite file (nothing here talks to LiveKit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr, ValidationError

from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings

pytestmark = pytest.mark.unit

PAGE_KEY = "vgw_pk_" + "p" * 43
OWNER_KEY = "vgw_sk_" + "o" * 43
INDEX = "<!doctype html><title>voice</title><div id=root></div>"


def settings_for(tmp_path: Path, web_dir: Path) -> GatewaySettings:
    return GatewaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        web_dir=web_dir,
        web_publishable_key=SecretStr(PAGE_KEY),
        bootstrap_api_key=SecretStr(OWNER_KEY),
        reaper_enabled=False,
        livekit_api_secret=SecretStr("s" * 32),  # never called: no route here talks to LiveKit
    )


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("outside the web root")
    return root


@pytest_asyncio.fixture(loop_scope="session")
async def client(tmp_path: Path, web_dir: Path) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(create_app(settings_for(tmp_path, web_dir)))) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/ops", "/some/deep/link"])
async def test_the_page_answers_its_own_paths(
    client: TestClient[object, object], path: str
) -> None:
    resp = await client.get(path)
    assert resp.status == 200 and await resp.text() == INDEX
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_built_assets_are_served_for_good(client: TestClient[object, object]) -> None:
    resp = await client.get("/assets/index-abc123.js")
    assert resp.status == 200 and "immutable" in resp.headers["Cache-Control"]
    missing = await client.get("/assets/index-gone.js")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"


async def test_nothing_outside_the_web_root_is_served(client: TestClient[object, object]) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        resp = await client.get(path)
        assert "outside the web root" not in await resp.text(), path


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unknown_api_paths_stay_json_404(
    client: TestClient[object, object], method: str
) -> None:
    resp = await client.request(method, "/v1/nothing-here")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_the_config_names_the_publishable_key(client: TestClient[object, object]) -> None:
    resp = await client.get("/config.json")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {
        "apiBaseUrl": "",
        "apiKey": PAGE_KEY,
        "defaultAgentId": "demo",
        "tokenEndpoint": "/v1/livekit/token",
    }


async def test_the_page_key_lists_its_agents_from_its_origins_only(
    client: TestClient[object, object],
) -> None:
    headers = {"x-api-key": PAGE_KEY}
    same_origin = await client.get("/v1/agents", headers=headers)  # browsers send no Origin here
    assert same_origin.status == 200
    agents = (await same_origin.json())["data"]
    assert [a["id"] for a in agents] == ["demo", "support"]
    assert set(agents[0]) == {"id", "name", "description", "language"}
    ok = await client.get("/v1/agents", headers={**headers, "Origin": "http://localhost:8080"})
    assert ok.status == 200
    elsewhere = await client.get("/v1/agents", headers={**headers, "Origin": "https://evil.test"})
    assert (await elsewhere.json())["error"]["code"] == "origin_not_allowed"


async def test_a_secret_key_from_the_page_is_refused(client: TestClient[object, object]) -> None:
    headers = {"x-api-key": OWNER_KEY}
    assert (await client.get("/v1/agents", headers=headers)).status == 200
    resp = await client.get("/v1/agents", headers={**headers, "Origin": "http://127.0.0.1:8080"})
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["code"] == "secret_key_in_browser" and "publishable" in error["message"]


async def test_an_unbuilt_client_says_how_to_build_it(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, tmp_path / "no-dist"))
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/")
        assert resp.status == 404
        error = (await resp.json())["error"]
        assert error["code"] == "web_client_not_built" and "make setup" in error["message"]


def test_the_page_never_gets_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="publishable"):
        GatewaySettings(web_publishable_key=SecretStr(OWNER_KEY))
