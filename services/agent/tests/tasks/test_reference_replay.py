"""Replays one reference solution per template in a real browser against the served site.

This is what an agent sees through @playwright/mcp: an `aria_snapshot(mode="ai")` per step,
refs resolved from it, actions through `aria-ref=` locators.
"""

import shutil

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from tracewheel.agent.tasks import TEMPLATES, Task, check_task, load_suite
from tracewheel.agent.tasksite.catalog import format_price
from tracewheel.gateway.browser_options import DEFAULT_LAUNCH_ARGS

CHROMIUM = shutil.which("chromium")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]


async def _replay(context: BrowserContext, task: Task) -> Page:
    """Run the reference steps the way @playwright/mcp would; return the page in focus."""
    page = await context.new_page()
    for step in task.reference:
        snapshot = await page.aria_snapshot(mode="ai") if step.targeted else None
        args = step.call_arguments(snapshot)
        if step.tool == "browser_navigate":
            await page.goto(args["url"])
        elif step.tool == "browser_tabs":
            while len(context.pages) <= args["index"]:
                await context.wait_for_event("page")
            page = context.pages[args["index"]]
            await page.bring_to_front()
        elif step.tool == "browser_fill_form":
            for field in args["fields"]:
                locator = page.locator(f"aria-ref={field['ref']}")
                if field["type"] == "combobox":
                    await locator.select_option(label=field["value"])
                else:
                    await locator.fill(field["value"])
        else:
            locator = page.locator(f"aria-ref={args['ref']}")
            if step.tool == "browser_click":
                await locator.click()
            else:
                await locator.fill(args["text"])
                if args["submit"]:
                    await locator.press("Enter")
        await page.wait_for_load_state()
    return page


def _fact_on_final_page(task: Task) -> str:
    if "price_cents" in task.params:
        return format_price(task.params["price_cents"])
    if task.template == "attribute_search":
        return task.params["value"]
    if task.template == "order_form":
        return "received"
    return task.params["b"]


async def test_reference_solutions_pass_in_a_real_browser(site_url: str) -> None:
    suite = load_suite("train", 0, base_url=site_url)
    tasks = [next(t for t in suite if t.template == name) for name in TEMPLATES]
    async with httpx.AsyncClient(base_url=site_url) as http, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(DEFAULT_LAUNCH_ARGS)
        )
        try:
            for task in tasks:
                (await http.post("/api/reset")).raise_for_status()
                context = await browser.new_context()
                try:
                    page = await _replay(context, task)
                    final = await page.aria_snapshot(mode="ai")
                finally:
                    await context.close()
                assert _fact_on_final_page(task) in final, (task.task_id, final)
                state = (await http.get("/api/state")).json()
                verdict = check_task(task, task.answer, state)
                assert verdict.passed, (task.task_id, verdict.reason)
        finally:
            await browser.close()
