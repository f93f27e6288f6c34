"""Signing in to the curation UI in headless Chromium: the form, a change made on the session (its
script sends the CSRF token), and signing out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tracewheel.core.http_security import HttpSecurity, allowed_hosts
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory
from .web import no_build, open_page, serving, url_of

pytestmark = pytest.mark.slow

TOKEN = "browser-test-token"


@pytest.fixture
async def base_url(store: TraceStore, make_trace: TraceFactory, tmp_path: Path) -> AsyncIterator[str]:
    store.ingest(make_trace("run-1", verdict="failed"))
    security = HttpSecurity(
        token=TOKEN,
        hosts=allowed_hosts([], "127.0.0.1"),
        open_paths=OPEN_PATHS,
        sign_in_path=SIGN_IN_PATH,
        setting_prefix="TW_DATASET_",
    )
    async with serving(create_app(store, no_build, None, security)) as server:  # type: ignore[arg-type]
        yield url_of(server)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with open_page(None, timeout_ms=10_000) as opened:
        yield opened


async def test_sign_in_approve_and_sign_out(page: Page, base_url: str, store: TraceStore) -> None:
    await page.goto(f"{base_url}/traces/run-1")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.get_by_label("Token").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not this service's token")
    await page.get_by_label("Token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("run-1")
    await page.get_by_role("button", name="Approve (a)").click()
    await expect(page.locator("#status")).to_have_text("approved")
    assert store.get("run-1").status == CurationStatus.APPROVED

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.goto(f"{base_url}/")
    await expect(page).to_have_url(f"{base_url}/login?next=%2F")
