"""A real review in headless Chromium: list, filter, open, approve, next, reject, edit, stale edit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory
from .web import no_build, open_page, serving, url_of

pytestmark = pytest.mark.slow


def _fill(store: TraceStore, make_trace: TraceFactory, attachments: Path) -> None:
    store.ingest(make_trace("run-1", created_at="2026-11-01T10:00:00Z"))  # passed: approved on ingest
    for day, task in ((2, "price"), (3, "cart"), (4, "search")):
        store.ingest(make_trace(f"run-{day}", task_id=task, verdict="failed", created_at=f"2026-11-0{day}T10:00:00Z"))
    shot = attachments / "session-4" / "page.png"
    shot.parent.mkdir(parents=True)
    shot.write_bytes(Path(__file__).with_name("fixtures").joinpath("screenshot.png").read_bytes())
    hostile = make_trace("run-5", task_id="hostile", verdict="failed", created_at="2026-11-05T10:00:00Z")
    hostile["messages"][3]["content"] = (
        "<script>document.title='pwned'</script><b>bold?</b>\n"
        f"[image saved to {shot} (image/png, {shot.stat().st_size} bytes)]\n" + "- row\n" * 40
    )
    store.ingest(hostile)


@pytest.fixture
async def base_url(store: TraceStore, make_trace: TraceFactory, tmp_path: Path) -> AsyncIterator[str]:
    attachments = tmp_path / "attachments"
    _fill(store, make_trace, attachments)
    async with serving(create_app(store, no_build, attachments)) as server:  # type: ignore[arg-type]
        yield url_of(server)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with open_page({"width": 1280, "height": 900}, timeout_ms=10_000) as opened:
        yield opened


async def test_review_in_the_browser(page: Page, base_url: str, store: TraceStore, tmp_path: Path) -> None:
    await page.goto(f"{base_url}/")
    await expect(page.locator("[data-count=pending]")).to_have_text("4")
    await page.screenshot(path=tmp_path / "list.png", full_page=True)

    await page.get_by_label("Status", exact=True).select_option("pending")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("a.trace-link")).to_have_text(["run-5", "run-4", "run-3", "run-2"])
    await page.get_by_role("link", name="run-5").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("run-5")
    result = page.locator("article[data-index='3'] pre[data-field=content]")
    await expect(result).to_contain_text("<script>document.title='pwned'</script><b>bold?</b>")
    assert await page.title() == "run-5 · tracewheel curation"
    await page.locator("article[data-index='3'] summary").click()  # long result starts folded
    await expect(page.get_by_role("img", name="screenshot session-4/page.png")).to_be_visible()
    await page.screenshot(path=tmp_path / "trace.png", full_page=True)

    await page.keyboard.press("a")
    await expect(page.locator("#status")).to_have_text("approved")
    assert store.get("run-5").status == CurationStatus.APPROVED

    await page.keyboard.press("j")
    await expect(page.get_by_role("heading", level=1)).to_have_text("run-4")
    await page.keyboard.press("r")
    await page.get_by_label("Reason").fill("answered the wrong product")
    await page.get_by_role("button", name="Reject", exact=True).click()
    await expect(page.locator("#reason")).to_have_text("answered the wrong product")
    assert store.get("run-4").status == CurationStatus.REJECTED

    await _edit_focused_message(page, store)
    await _stale_edit_shows_reload(page, store)

    await page.keyboard.press("?")
    await expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()


async def _edit_focused_message(page: Page, store: TraceStore) -> None:
    await page.locator("article[data-index='4'] pre[data-field=content]").click()
    await page.keyboard.press("e")
    await expect(page.get_by_label("Text")).to_have_value("The Red kettle.")
    await page.get_by_label("Text").fill("The Blue teapot.")
    await page.get_by_role("button", name="Save edit").click()
    await expect(page.locator("main[data-revision='1']")).to_be_attached()
    assert store.get("run-4").trace.messages[4].content == "The Blue teapot."


async def _stale_edit_shows_reload(page: Page, store: TraceStore) -> None:
    store.edit_message("run-4", 1, 1, "Which product comes first?")  # someone else, after the page loaded
    await page.locator("article[data-index='4']").get_by_role("button", name="Edit content").click()
    await page.get_by_label("Text").fill("The Green kettle.")
    await page.get_by_role("button", name="Save edit").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "this trace changed since you opened it; reload", ignore_case=True
    )
    assert store.get("run-4").trace.messages[4].content == "The Blue teapot."
    await page.get_by_role("button", name="Reload").click()
    await expect(page.locator("main[data-revision='2']")).to_be_attached()
