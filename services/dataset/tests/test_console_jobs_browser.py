"""The jobs pages in headless Chromium against the trainer's real servicer over a real JobQueue:
the list, a finished job's chart from its loss log, a running job's chart following new steps
live, cancelling a queued and a running job through the page (confirmed), a refusal in the
banner, hostile text shown as text, screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page, async_playwright, expect

from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore
from tracewheel.gateway.browser_options import DEFAULT_LAUNCH_ARGS
from tracewheel.trainer.jobs import JobState

from .console_job_peers import RunningTrainer, running_trainer

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/console-shots")
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


async def _no_build(*, force: bool) -> None:
    raise AssertionError("no build in this test")


@pytest.fixture
async def trainer(tmp_path: Path) -> AsyncIterator[RunningTrainer]:
    async with running_trainer(tmp_path) as running:
        yield running


@pytest.fixture
async def base_url(store: TraceStore, trainer: RunningTrainer) -> AsyncIterator[str]:
    config = ConsoleConfig(Peers({"trainer": trainer.address}))
    app = create_app(store, _no_build, None, console=config)  # type: ignore[arg-type]
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        config.stopping.set()  # ends the open event streams, so the server can stop
        await server.stop()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(DEFAULT_LAUNCH_ARGS)
        )
        opened = await browser.new_page(viewport=VIEWPORTS["desktop"])  # type: ignore[arg-type]
        opened.set_default_timeout(15_000)
        try:
            yield opened
        finally:
            await browser.close()


async def _shoot(page: Page, name: str) -> None:
    """Full-page screenshots at both widths; the page is left at the desktop width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in VIEWPORTS.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
    await page.set_viewport_size(VIEWPORTS["desktop"])  # type: ignore[arg-type]


async def test_the_list_and_a_finished_jobs_chart_and_hostile_error(
    page: Page, base_url: str, trainer: RunningTrainer
) -> None:
    await page.goto(f"{base_url}/console/jobs")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(4)
    live = trainer.jobs["ds-live"].id
    await expect(page.locator(f"tr[data-job='{live}'] .progress")).to_contain_text("step 3 of 10 · loss 1.75")
    broken = page.locator(f"tr[data-job='{trainer.jobs['ds-broken'].id}'] .reason")
    await expect(broken).to_contain_text("<script>document.title='pwned'</script>")  # shown as text
    await _shoot(page, "jobs")

    await page.get_by_role("link", name=trainer.jobs["ds-done"].id).click()
    await expect(page.locator("main h1")).to_have_text(f"Job {trainer.jobs['ds-done'].id}")
    await expect(page.locator("svg.chart polyline")).to_have_count(2)
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("8 logged steps")
    await expect(page.locator("tr[data-figure='success'] td")).to_have_text(["60.0% (6/10)", "40.0% (4/10)"])
    await expect(page.locator("tr[data-option='lora_r'] td")).to_have_text("4")
    await expect(page.get_by_role("button", name="Cancel this job")).to_have_count(0)
    await _shoot(page, "jobs-detail")

    await page.goto(f"{base_url}/console/jobs/{trainer.jobs['ds-broken'].id}")
    await expect(page.locator(".job-error")).to_contain_text("<img src=x onerror=")
    assert await page.title() == f"{trainer.jobs['ds-broken'].id} · jobs · tracewheel console"  # nothing ran
    await _shoot(page, "jobs-failed")


async def test_a_running_jobs_chart_follows_its_steps_and_cancel_stops_it(
    page: Page, base_url: str, trainer: RunningTrainer
) -> None:
    answers: list[str] = []

    async def accept(dialog: Dialog) -> None:
        answers.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    live = trainer.jobs["ds-live"].id
    await page.goto(f"{base_url}/console/jobs/{live}")
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("3 logged steps")
    trainer.runner.advance.set()  # the trainer logs step 4 and reports it
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("4 logged steps")  # no reload
    await expect(page.locator(".summary .progress")).to_contain_text("step 4 of 10")
    await _shoot(page, "jobs-running")

    await page.get_by_role("button", name="Cancel this job").click()
    await expect(page.locator("#notice")).to_contain_text(f"Job {live} stops at its next step")
    assert answers == [f"Cancel training job {live} (running)?"]
    await expect(page.locator(".summary .job-state")).to_have_text("cancelled")  # followed live
    assert trainer.queue.get(live).state == JobState.CANCELLED

    waiting = trainer.jobs["ds-waiting"].id
    await page.goto(f"{base_url}/console/jobs/{waiting}")
    await page.get_by_role("button", name="Cancel this job").click()
    await expect(page.locator("#notice")).to_have_text(f"Job {waiting} is cancelled (cancelled before it started).")
    assert trainer.queue.get(waiting).state == JobState.CANCELLED
    await expect(page.locator(".summary .job-state")).to_have_text("cancelled")


async def test_a_refused_cancel_shows_the_trainers_reason(page: Page, base_url: str, trainer: RunningTrainer) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    await page.route("**/console/events", lambda route: route.abort())  # the page does not refresh
    waiting = trainer.jobs["ds-waiting"].id
    await page.goto(f"{base_url}/console/jobs/{waiting}")
    trainer.queue.cancel(waiting)  # it ended after the page was drawn
    await page.get_by_role("button", name="Cancel this job").click()
    await expect(page.locator("#banner-text")).to_have_text(f"Not saved: job {waiting} already finished (CANCELLED)")


async def test_a_dismissed_confirm_cancels_nothing(page: Page, base_url: str, trainer: RunningTrainer) -> None:
    page.on("dialog", lambda dialog: dialog.dismiss())
    waiting = trainer.jobs["ds-waiting"].id
    await page.goto(f"{base_url}/console/jobs/{waiting}")
    await page.get_by_role("button", name="Cancel this job").click()
    await expect(page.locator("#notice")).to_be_hidden()
    assert trainer.queue.get(waiting).state == JobState.QUEUED
