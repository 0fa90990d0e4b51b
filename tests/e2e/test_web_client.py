"""A person talks to the demo agent in a real Chromium, on the page the gateway serves.

Debian's chromium, driven by Playwright (never a browser a tool downloads), a fake microphone
playing a question spoken by espeak-ng, autoplay allowed. What the person would notice is what is
checked: the status line, the captions, the agent's voice measured with WebAudio in the page, the
ambience playing in an element of its own. Waits are generous (a loaded 2-core machine), and no
timing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from devstack.stack import Stack
from tests.e2e.browser import DOCS, chromium, watched_page
from tests.e2e.conftest import Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.one_store, pytest.mark.browser]

DEMO_GREETING = "Hello! I am the demo agent. Ask me about our opening hours or prices."
HOURS_ANSWER_START = "We are open from nine"
SCREENSHOT = DOCS / "web-client.png"
# What a page under load still shows within these; none of them is a speed claim.
CONNECT_S, SPEECH_S = 60, 60
# Float RMS of a 50 ms window: ~-46 dBFS is a voice, ~-64 dBFS is quiet ambience.
VOICE_RMS, SOUND_RMS = 0.005, 0.0006

# Measures what each <audio> element of the page plays: the MediaStream it renders, through a
# WebAudio analyser. Elements are grouped by their data-audio mark ("voice" on the container of
# the voice renderer, "background" on the ambience element).
AUDIO_METER = """
(() => {
  const meter = { loud: {}, sound: {}, peak: {} };
  window.__audioMeter = meter;
  let ctx = null;
  const kindOf = (el) => (el.closest('[data-audio]') || { dataset: {} }).dataset.audio || 'other';
  setInterval(() => {
    for (const el of document.querySelectorAll('audio')) {
      const stream = el.srcObject;
      if (!stream || el.__metered === stream) continue;
      el.__metered = stream;
      ctx = ctx || new AudioContext();
      ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      ctx.createMediaStreamSource(stream).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      const kind = kindOf(el);
      setInterval(() => {
        if (el.paused || el.muted || el.volume === 0) return;  // not heard, whatever it carries
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const rms = Math.sqrt(sum / buf.length);
        meter.peak[kind] = Math.max(meter.peak[kind] || 0, rms);
        if (rms > VOICE_RMS) meter.loud[kind] = (meter.loud[kind] || 0) + 1;
        if (rms > SOUND_RMS) meter.sound[kind] = (meter.sound[kind] || 0) + 1;
      }, 50);
    }
  }, 100);
})();
""".replace("VOICE_RMS", str(VOICE_RMS)).replace("SOUND_RMS", str(SOUND_RMS))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(
    question_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BrowserContext]:
    async with chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question_wav}%noloop",
    ) as context:
        await context.add_init_script(AUDIO_METER)
        yield context


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    async with watched_page(browser) as page:
        yield page


async def meter(page: Page) -> dict[str, Any]:
    return await page.evaluate("() => JSON.parse(JSON.stringify(window.__audioMeter))")  # type: ignore[no-any-return]


async def wait_for_meter(page: Page, level: str, kind: str, windows: int, what: str) -> None:
    """Until `windows` 50 ms windows of the `kind` elements were over the `level` threshold."""
    script = "([g, k, n]) => (((window.__audioMeter || {})[g] || {})[k] || 0) >= n"
    try:
        await page.wait_for_function(script, arg=[level, kind, windows], timeout=SPEECH_S * 1000)
    except Exception as exc:
        raise AssertionError(f"{what}: {await meter(page)}") from exc


async def talk(page: Page, url: str) -> str:
    """Opens the page, joins muted (the person waits for the greeting), presses Talk; returns the
    room of the call once connected."""
    await page.goto(url)
    status = page.get_by_role("status")
    await expect(status).to_contain_text("Idle", timeout=CONNECT_S * 1000)
    await expect(page.get_by_label("Agent")).to_have_value("demo")
    mute = page.get_by_role("button", name="Mute")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("button", name="Talk").click()
    await expect(status).to_have_attribute("data-phase", "connected", timeout=CONNECT_S * 1000)
    room = await page.get_by_role("region", name="Call").get_attribute("data-room")
    assert room
    return room


def captions(page: Page, speaker: str) -> Any:
    return page.get_by_role("log").locator(f"li[data-speaker='{speaker}'][data-final='true']")


async def hang_up_and_check(page: Page, gateway: Gateway, room: str) -> None:
    await page.get_by_role("button", name="Hang up").click()
    status = page.get_by_role("status")
    await expect(status).to_have_attribute("data-phase", "idle", timeout=CONNECT_S * 1000)
    await expect(page.get_by_role("button", name="Talk")).to_be_enabled()
    record = await gateway.wait_for_session(
        room, lambda r: r["status"] == "ended", 30, "the session to end"
    )
    assert record["endReason"] == "client_ended", record


async def test_a_person_talks_with_the_agent_in_the_browser(
    page: Page, gateway: Gateway, stack: Stack, tmp_path: Path
) -> None:
    room = await talk(page, stack.gateway_url + "/")
    session = await gateway.session(room)
    assert session["agentId"] == "demo" and session["channel"] == "web"

    # The greeting: captioned, and heard (the voice element's stream is loud for a while).
    agent_lines = captions(page, "agent")
    await expect(agent_lines.first).to_contain_text(DEMO_GREETING, timeout=SPEECH_S * 1000)
    await wait_for_meter(page, "loud", "voice", 20, "the agent's voice was not heard")
    # The ambience plays in its own element, at its own volume, apart from the voice.
    background = page.locator("audio[data-audio='background']")
    await expect(background).to_have_count(1)
    assert await background.evaluate("el => !el.paused && el.volume === 0.5")
    assert await page.locator("[data-audio='voice'] audio").count() == 1
    await wait_for_meter(page, "sound", "background", 20, "the ambience was not heard")
    tracks = await page.evaluate(
        "() => [...document.querySelectorAll('audio')].map(a => a.srcObject.getAudioTracks()[0].id)"
    )
    assert len(set(tracks)) == len(tracks), "a track is played by two elements"

    # The person unmutes once the agent listens, and asks the question; asked to say it again
    # (the offline STT declines what it heard with doubt, and a loaded machine delivers audio in
    # bursts), they repeat it, up to twice: muting releases the microphone, so unmuting plays the
    # question again.
    status = page.get_by_role("status")
    mute = page.get_by_role("button", name="Mute")
    answer = agent_lines.filter(has_text=HOURS_ANSWER_START)
    for attempt in range(1, 4):
        await expect(status).to_have_attribute(
            "data-agent-state", "listening", timeout=SPEECH_S * 1000
        )
        replies = await agent_lines.count()
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "false")
        await expect(captions(page, "you").nth(attempt - 1)).to_have_text(
            re.compile(r"You\s*\S+"), timeout=SPEECH_S * 1000
        )
        # The answer, by its opening words: an interrupted agent gets a final caption that ends
        # where its voice stopped.
        await expect(agent_lines.nth(replies)).to_be_visible(timeout=SPEECH_S * 1000)
        if await answer.count() or attempt == 3:
            break
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true")
    await expect(answer.first).to_be_visible()
    await expect(status).to_have_attribute("data-agent-state", "listening", timeout=SPEECH_S * 1000)
    # Interim lines were replaced by their final text, not left beside it.
    log = page.get_by_role("log")
    await expect(log.locator("li[data-final='false']")).to_have_count(0, timeout=SPEECH_S * 1000)
    assert await log.locator("li[data-speaker='you']").count() >= 1

    shot = tmp_path / "web-client.png"
    await page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("VOICEGW_UPDATE_SCREENSHOT"):
        SCREENSHOT.write_bytes(shot.read_bytes())

    await hang_up_and_check(page, gateway, room)
    assert await page.get_by_role("region", name="Call").count() == 0


async def test_livekit_clients_token_source_reaches_the_agent(
    page: Page, gateway: Gateway, stack: Stack
) -> None:
    async with page.expect_response("**/v1/livekit/token") as token_call:
        room = await talk(page, stack.gateway_url + "/?via=token-endpoint")
    response = await token_call.value
    assert response.status == 201
    request = response.request
    assert request.headers["x-api-key"].startswith("vgw_pk_")
    assert request.post_data_json["room_config"]["agents"][0]["agent_name"] == "demo"
    session = await gateway.session(room)
    assert session["agentId"] == "demo" and session["status"] == "active"

    await wait_for_meter(page, "loud", "voice", 20, "the agent's voice was not heard")
    await expect(captions(page, "agent").first).to_contain_text(
        DEMO_GREETING, timeout=SPEECH_S * 1000
    )
    await hang_up_and_check(page, gateway, room)


async def test_a_person_types_to_the_agent_during_the_call(
    page: Page, gateway: Gateway, stack: Stack
) -> None:
    """The text box of the call: for when speaking is not possible. The person stays muted."""
    room = await talk(page, stack.gateway_url + "/")
    # Final or not (a line turns final when its stream's trailer arrives): what matters here
    # is that the words are there.
    agent_lines = page.get_by_role("log").locator("li[data-speaker='agent']")
    await expect(agent_lines.first).to_contain_text(DEMO_GREETING, timeout=SPEECH_S * 1000)
    status = page.get_by_role("status")
    await expect(status).to_have_attribute("data-agent-state", "listening", timeout=SPEECH_S * 1000)
    box = page.get_by_role("textbox", name="Message")
    await box.fill("When are you open?")
    await page.get_by_role("button", name="Send").click()
    await expect(box).to_have_value("")
    typed = page.get_by_role("log").locator("li[data-speaker='you'][data-typed='true']")
    await expect(typed).to_have_text(re.compile(r"You\s*When are you open\?"))
    await expect(agent_lines.nth(1)).to_contain_text(HOURS_ANSWER_START, timeout=SPEECH_S * 1000)
    await wait_for_meter(page, "loud", "voice", 40, "the typed question's answer was not heard")

    async def stored() -> list[tuple[str, str]]:
        _status, transcript = await gateway.get(f"/v1/sessions/{room}/transcript")
        return [(s["speaker"], s["modality"]) for s in transcript.get("segments", [])]

    for _ in range(100):
        if len(await stored()) >= 3:
            break
        await asyncio.sleep(0.2)
    assert (await stored())[:3] == [("agent", "voice"), ("user", "text"), ("agent", "voice")]
    await hang_up_and_check(page, gateway, room)
