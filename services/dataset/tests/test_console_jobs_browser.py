"""The jobs pages in headless Chromium against the trainer's real servicer over a real JobQueue:
the list, a finished job's chart from its loss log, a running job's chart following new steps
live, cancelling a queued and a running job through the page (confirmed), a refusal in the
banner, hostile text shown as text, screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore
from tracewheel.trainer.jobs import JobState

from .console_job_peers import RunningTrainer
from .web import accept_dialogs, no_build, serving, shoot, url_of

pytestmark = pytest.mark.slow


@pytest.fixture
async def base_url(store: TraceStore, trainer: RunningTrainer) -> AsyncIterator[str]:
    config = ConsoleConfig(Peers({"trainer": trainer.address}))
    app = create_app(store, no_build, None, console=config)  # type: ignore[arg-type]
    async with serving(app, config.stopping) as server:  # stopping ends the open event streams
        yield url_of(server)


async def test_the_list_and_a_finished_jobs_chart_and_hostile_error(
    page: Page, base_url: str, trainer: RunningTrainer
) -> None:
    await page.goto(f"{base_url}/console/jobs")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(4)
    live = trainer.jobs["ds-live"].id
    await expect(page.locator(f"tr[data-job='{live}'] .progress")).to_contain_text("step 3 of 10 · loss 1.75")
    broken = page.locator(f"tr[data-job='{trainer.jobs['ds-broken'].id}'] .reason")
    await expect(broken).to_contain_text("<script>document.title='pwned'</script>")  # shown as text
    await shoot(page, "jobs")

    await page.get_by_role("link", name=trainer.jobs["ds-done"].id).click()
    await expect(page.locator("main h1")).to_have_text(f"Job {trainer.jobs['ds-done'].id}")
    await expect(page.locator("svg.chart polyline")).to_have_count(2)
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("8 logged steps")
    await expect(page.locator("tr[data-figure='success'] td")).to_have_text(["60.0% (6/10)", "40.0% (4/10)"])
    await expect(page.locator("tr[data-option='lora_r'] td")).to_have_text("4")
    await expect(page.get_by_role("button", name="Cancel this job")).to_have_count(0)
    await shoot(page, "jobs-detail")

    await page.goto(f"{base_url}/console/jobs/{trainer.jobs['ds-broken'].id}")
    await expect(page.locator(".job-error")).to_contain_text("<img src=x onerror=")
    assert await page.title() == f"{trainer.jobs['ds-broken'].id} · jobs · tracewheel console"  # nothing ran
    await shoot(page, "jobs-failed")


async def test_a_running_jobs_chart_follows_its_steps_and_cancel_stops_it(
    page: Page, base_url: str, trainer: RunningTrainer
) -> None:
    answers = accept_dialogs(page)
    live = trainer.jobs["ds-live"].id
    await page.goto(f"{base_url}/console/jobs/{live}")
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("3 logged steps")
    trainer.runner.advance.set()  # the trainer logs step 4 and reports it
    await expect(page.locator(".loss-chart figcaption")).to_contain_text("4 logged steps")  # no reload
    await expect(page.locator(".summary .progress")).to_contain_text("step 4 of 10")
    await shoot(page, "jobs-running")

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
