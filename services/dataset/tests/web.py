"""The web app in tests: an in-process HTTP client, a real server on a free port, and headless
Chromium pages with desktop and phone screenshots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

if TYPE_CHECKING:
    from playwright.async_api import Dialog, Page, ViewportSize

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/console-shots")
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


async def no_build(*, force: bool) -> None:
    """The build callback of an app whose test never builds.

    Raises:
        AssertionError: always.
    """
    raise AssertionError("no build in this test")


def console_client(
    store: TraceStore, addresses: dict[str, str], security: HttpSecurity | None = None
) -> httpx.AsyncClient:
    """An httpx client on the app in process, its console connected to the peers at `addresses`."""
    console = ConsoleConfig(Peers(addresses))  # type: ignore[arg-type]
    app = create_app(store, no_build, None, security, console=console)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


def url_of(server: HttpServer) -> str:
    """The base URL of a started server on 127.0.0.1."""
    return f"http://127.0.0.1:{server.port}"


@asynccontextmanager
async def serving(app: Any, stopping: asyncio.Event | None = None) -> AsyncIterator[HttpServer]:
    """Serves `app` on 127.0.0.1 at a free port; sets `stopping` (open event streams end) before the stop.

    Raises:
        OSError: the port could not be bound.
    """
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        if stopping is not None:
            stopping.set()
        await server.stop()


@asynccontextmanager
async def open_page(viewport: ViewportSize | None = DESKTOP, timeout_ms: float = 15_000) -> AsyncIterator[Page]:
    """A page of headless Chromium (the gateway's launch arguments); None keeps Playwright's viewport."""
    from playwright.async_api import async_playwright

    from tracewheel.gateway.browser_options import DEFAULT_LAUNCH_ARGS

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(DEFAULT_LAUNCH_ARGS)
        )
        opened = await browser.new_page(viewport=viewport) if viewport else await browser.new_page()
        opened.set_default_timeout(timeout_ms)
        try:
            yield opened
        finally:
            await browser.close()


async def shoot(page: Page, name: str) -> None:
    """Full-page screenshots SHOTS/NAME-desktop.png and -phone.png; the page is left at the desktop width.

    Raises:
        AssertionError: the page is wider than the viewport at either width.
    """
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name} is {width}px wide at {size['width']}px"
    await page.set_viewport_size(DESKTOP)


def accept_dialogs(page: Page) -> list[str]:
    """Accepts every dialog the page opens (confirm before a change); returns their messages as they come."""
    messages: list[str] = []

    async def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    return messages
