"""Helpers for the phone stories: numbers through the API, calls from real SIP phones."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from devstack.sip_phone import Baresip
from devstack.stack import Stack
from tests.e2e.conftest import Gateway


def fresh_number() -> str:
    """Numbers are unique per test: the stack is shared."""
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))


def sip_address(stack: Stack) -> str:
    assert stack.sip is not None, "the stack runs without the SIP service"
    return stack.sip.address


async def add_number(gateway: Gateway, **body: Any) -> dict[str, Any]:
    body.setdefault("number", fresh_number())
    body.setdefault("agentId", "demo")
    body.setdefault("allowedAddresses", ["127.0.0.1/32"])
    status, payload, _ = await gateway.post("/v1/phone-numbers", body)
    assert status == 201, payload
    return payload  # type: ignore[no-any-return]


@asynccontextmanager
async def phone(number: str | None = None, **kw: Any) -> AsyncIterator[Baresip]:
    p = Baresip(number=number or fresh_number(), **kw)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def phone_session(
    gateway: Gateway, caller: str, within: float = 30.0, status: str | None = None
) -> dict[str, Any]:
    """The newest phone session of `caller`."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        code, page = await gateway.get("/v1/sessions?channel=phone&limit=50")
        assert code == 200, page
        for s in page["data"]:
            if s["phone"] and caller in (s["phone"]["callerNumber"], s["phone"]["calledNumber"]):
                if status is None or s["status"] == status:
                    return s  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no phone session for {caller}: {page['data'][:3]}")
        await asyncio.sleep(0.2)


def spoken_wav(
    directory: Path, text: str, *, rate: int = 48000, lead: float = 0.0, tail: float = 0.0
) -> Path:
    """espeak-ng speech as a mono 16-bit WAV at `rate`, with silence before and after."""
    raw = directory / f"{secrets.token_hex(4)}-raw.wav"
    out = directory / f"{secrets.token_hex(4)}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    shape = ["-r", str(rate), "-c", "1", "-b", "16"]
    subprocess.run(["sox", str(raw), *shape, str(out), "pad", str(lead), str(tail)], check=True)
    return out


def telephone_wav(directory: Path, text: str, *, lead: float, tail: float = 40.0) -> Path:
    """Speech as a phone sends it: 8 kHz, after `lead` seconds of silence (the greeting plays
    first), with silence after it: baresip hangs up when its file ends."""
    return spoken_wav(directory, text, rate=8000, lead=lead, tail=tail)


def telephone_turns(
    directory: Path, texts: list[str], *, lead: float, gap: float, tail: float
) -> Path:
    """A caller who says one thing, waits `gap` seconds (for the agent's answer), then says the
    next, as `telephone_wav` makes each."""
    parts = [str(telephone_wav(directory, text, lead=0.0, tail=gap)) for text in texts]
    out = directory / f"{secrets.token_hex(4)}-turns.wav"
    subprocess.run(["sox", *parts, str(out), "pad", str(lead), str(tail)], check=True)
    return out


async def wait_for_agent_line(
    gateway: Gateway, room: str, within: float = 45
) -> list[dict[str, Any]]:
    """The transcript once the agent has said something (a line is stored when it was spoken)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        code, body = await gateway.get(f"/v1/sessions/{room}/transcript")
        assert code == 200, body
        if any(s["speaker"] == "agent" for s in body["segments"]):
            return body["segments"]  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the agent said nothing in {within}s")
        await asyncio.sleep(0.3)
