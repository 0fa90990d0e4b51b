"""An operator's story at /ops, in a real Chromium on the page the gateway serves: paste a key, see
the live call and a room someone made in LiveKit behind the gateway's back (an orphan), read the
call's transcript and setup timeline, and end both from the page, each after a confirmation.

The page and its table are driven as a person would (labels, buttons, the dialog); what ending
did is checked where it happened: LiveKit's room list, the session record, the caller's line.
Waits are generous (a loaded 2-core machine); no timing is asserted.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from livekit import api
from playwright.async_api import BrowserContext, Locator, Page, expect

from devstack.stack import Stack
from devstack.voice_client import VoiceClient
from tests.e2e.browser import DOCS, chromium, watched_page
from tests.e2e.conftest import AGENT_JOIN_S, Gateway, room_names
from tests.e2e.test_keys import create_key

pytestmark = [pytest.mark.e2e, pytest.mark.one_store, pytest.mark.browser]

SCREENSHOT = DOCS / "ops-page.png"
DEMO_GREETING = "Hello! I am the demo agent."
WAIT_MS = 60_000
OPS_SCOPES = ["ops:write", "sessions:read"]
STORAGE_KEY = "voicegw.opsKey"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    async with chromium(tmp_path_factory.mktemp("chromium-ops"), width=1280, height=1000) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    async with watched_page(browser) as page:
        yield page


async def console_key(gateway: Gateway, **overrides: Any) -> str:
    body = {"name": "ops console", "scopes": OPS_SCOPES, "allowBrowser": True, **overrides}
    return str((await create_key(gateway, **body))["key"])


async def sign_in(page: Page, stack: Stack, key: str) -> None:
    await page.goto(stack.gateway_url + "/ops")
    await page.get_by_label("Operator key").fill(key)
    await page.get_by_role("button", name="Use key").click()


def table(page: Page) -> Locator:
    return page.get_by_role("table", name="Live rooms and sessions")


def row(page: Page, room: str) -> Locator:
    return table(page).locator(f"tr[data-room='{room}']")


async def end_from_page(page: Page, end_button: Locator, room: str) -> None:
    await end_button.click()
    dialog = page.get_by_role("dialog", name=f"End {room}?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="End room").click()
    await expect(dialog).to_be_hidden(timeout=WAIT_MS)
    await expect(page.get_by_role("note")).to_contain_text(f"Ended {room}: room deleted")


async def test_an_operator_finds_an_orphan_and_a_live_call_and_ends_both(
    page: Page,
    browser: BrowserContext,
    gateway: Gateway,
    stack: Stack,
    lkapi: api.LiveKitAPI,
    client: VoiceClient,
    tmp_path: Path,
) -> None:
    # A live call: a caller in the room with the agent, the greeting said and transcribed.
    session = await gateway.start(agentId="demo", userIdentity="ops-caller")
    call = session["roomName"]
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent(within=AGENT_JOIN_S)
    await client.wait_for(lambda: client.captions_of(agent), 60, "the greeting")
    await gateway.wait_for_session(
        call, lambda r: r["participants"]["agent"]["joinedAt"], AGENT_JOIN_S, "the agent's join"
    )

    key = await console_key(gateway)
    await sign_in(page, stack, key)
    await expect(table(page)).to_be_visible(timeout=WAIT_MS)
    call_row = row(page, call)
    await expect(call_row).to_be_visible(timeout=WAIT_MS)
    cells = call_row.get_by_role("cell")
    await expect(cells.nth(0)).to_have_text("demo")  # agent
    await expect(cells.nth(1)).to_have_text("web")  # channel
    await expect(cells.nth(2)).to_have_text("active")
    await expect(cells.nth(4)).to_have_text("1 person + agent", timeout=WAIT_MS)
    await expect(call_row.locator(".flag")).to_have_count(0)

    # A room made in LiveKit behind the gateway's back shows up on the next refresh, flagged.
    stuck = f"stuck-{secrets.token_hex(4)}"
    await lkapi.room.create_room(api.CreateRoomRequest(name=stuck, empty_timeout=600))
    stuck_row = row(page, stuck)
    await expect(stuck_row).to_be_visible(timeout=WAIT_MS)
    await expect(stuck_row.get_by_text("orphan")).to_be_visible()
    await expect(stuck_row.get_by_role("cell").nth(2)).to_have_text("no session")
    await expect(stuck_row.get_by_role("cell").nth(4)).to_have_text("0 people")

    # Open the call: what was said and how its setup went.
    await page.get_by_role("button", name=f"Open {call}").click()
    panel = page.get_by_role("region", name=f"Session {call}")
    await expect(panel.get_by_role("log")).to_contain_text(DEMO_GREETING, timeout=WAIT_MS)
    timeline = panel.get_by_role("table", name="Setup timeline")
    for step in ("created", "agentJoined", "userJoined"):
        await expect(timeline.locator(f"tr[data-step='{step}'] td").first).not_to_have_text(
            "not yet", timeout=WAIT_MS
        )
    shot = tmp_path / "ops-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("VOICEGW_UPDATE_SCREENSHOT"):
        SCREENSHOT.write_bytes(shot.read_bytes())

    # The orphan, ended from the page: LiveKit no longer has it, and the table no longer shows it.
    await end_from_page(page, stuck_row.get_by_role("button", name=f"End {stuck}"), stuck)
    await expect(stuck_row).to_have_count(0, timeout=WAIT_MS)
    assert stuck not in await room_names(lkapi)

    # A change of mind changes nothing; then the call is ended from its panel.
    await call_row.get_by_role("button", name=f"End {call}").click()
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    assert (await gateway.session(call))["status"] == "active"
    await end_from_page(page, panel.get_by_role("button", name="End…"), call)
    ended = await gateway.wait_for_session(call, lambda r: r["status"] == "ended", 30, "the end")
    assert ended["endReason"] == "ops_ended"
    await client.wait_for(client.disconnected.is_set, 30, "the caller to be disconnected")
    await expect(call_row).to_have_count(0, timeout=WAIT_MS)
    assert call not in await room_names(lkapi)

    # The key lives in this tab only: not in localStorage, and a new tab asks for it again.
    assert await page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") == key
    assert await page.evaluate("localStorage.length") == 0
    other_tab = await browser.new_page()
    await other_tab.goto(stack.gateway_url + "/ops")
    await expect(other_tab.get_by_label("Operator key")).to_be_visible(timeout=WAIT_MS)
    await other_tab.close()
    await page.get_by_role("button", name="Forget key").click()
    await expect(page.get_by_label("Operator key")).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None


@pytest.mark.parametrize(
    ("key_body", "code", "hint"),
    [
        ({"allowBrowser": False}, "secret_key_in_browser", "--allow-browser"),
        ({"scopes": ["sessions:read"]}, "insufficient_scope", "ops:write"),
    ],
    ids=["not-made-for-browsers", "no-ops-scope"],
)
async def test_a_key_the_page_cannot_use_is_refused_with_what_to_do(
    page: Page, gateway: Gateway, stack: Stack, key_body: dict[str, Any], code: str, hint: str
) -> None:
    await sign_in(page, stack, await console_key(gateway, **key_body))
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text(code, timeout=WAIT_MS)
    await expect(alert).to_contain_text(hint)
    await expect(table(page)).to_have_count(0)
    assert await page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None


async def ready_room_of(gateway: Gateway, number_id: str) -> str:
    status, rooms = await gateway.get("/v1/ops/rooms")
    assert status == 200, rooms
    [room] = [r for r in rooms["data"] if (r["phoneLine"] or {}).get("numberId") == number_id]
    assert room["orphan"] is False and room["session"] is None, room
    return str(room["roomName"])


async def test_an_operator_sees_a_number_wait_then_its_call_and_hangs_it_up(
    page: Page, gateway: Gateway, stack: Stack
) -> None:
    from tests.e2e.phones import add_number, phone, phone_session, sip_address

    number = await add_number(gateway, agentId="demo")
    ready = await ready_room_of(gateway, number["id"])
    await sign_in(page, stack, await console_key(gateway))
    # The number's ready room: not an orphan, waiting for its call, under its number.
    ready_row = row(page, ready)
    await expect(ready_row).to_be_visible(timeout=WAIT_MS)
    cells = ready_row.get_by_role("cell")
    await expect(cells.nth(0)).to_have_text("demo")
    await expect(cells.nth(1)).to_have_text("phone")
    await expect(cells.nth(2)).to_have_text("waiting for a call")
    await expect(ready_row.get_by_text("orphan")).to_have_count(0)
    await expect(ready_row.locator(".flag-ready")).to_have_text(number["number"])

    # A phone calls the number: that room becomes the call, listed as an inbound phone session.
    async with phone() as caller:
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        await caller.wait_for("CALL_ESTABLISHED", AGENT_JOIN_S)
        session = await phone_session(gateway, caller.number, status="active")
        assert session["roomName"] == ready
        await expect(cells.nth(1)).to_have_text("phone in", timeout=WAIT_MS)
        await expect(cells.nth(2)).to_have_text("active", timeout=WAIT_MS)
        await expect(ready_row.locator(".flag-ready")).to_have_count(0)
        await page.get_by_role("button", name=f"Open {ready}").click()
        panel = page.get_by_role("region", name=f"Session {ready}")
        await expect(panel).to_contain_text(
            f"inbound: {caller.number} → {number['number']}", timeout=WAIT_MS
        )
        # Ending it from the page hangs up the phone.
        await end_from_page(page, panel.get_by_role("button", name="End…"), ready)
        await caller.wait_for("CALL_CLOSED", 60)
    ended = await gateway.wait_for_session(ready, lambda r: r["status"] == "ended", 30, "the end")
    assert ended["endReason"] == "ops_ended"
    # The number already waits in a new room of its own.
    assert await ready_room_of(gateway, number["id"]) != ready
