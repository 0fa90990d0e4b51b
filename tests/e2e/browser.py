"""Debian's Chromium, driven by Playwright, never a browser a tool downloads: launched headless with
a fresh profile and nothing that would reach beyond this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
OFFLINE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def chromium(
    profile: Path, *extra_args: str, width: int = 1000, height: int = 760
) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=[*OFFLINE_ARGS, *extra_args],
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            await context.close()


@asynccontextmanager
async def watched_page(context: BrowserContext) -> AsyncIterator[Page]:
    """A new tab that fails the test, once closed, if the page threw anything."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    await page.close()
    assert not errors, f"the page threw: {errors}"
