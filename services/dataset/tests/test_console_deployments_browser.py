"""The deployment pages in headless Chromium, against inference's and the agent's real servicers:
the list, a decision whose won and lost tasks open both runs' traces, a deploy, a rollback and a
move of the alias through the page (confirmed), a refusal in the banner, screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Dialog, Page, expect

from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .console_deployment_peers import HOSTILE_ADAPTER, DeploymentPeers, served_aliases
from .web import accept_dialogs, no_build, serving, shoot, url_of

pytestmark = pytest.mark.slow


@pytest.fixture
async def base_url(store: TraceStore, peers: DeploymentPeers) -> AsyncIterator[str]:
    console = ConsoleConfig(Peers({"inference": peers.inference, "agent": peers.agent}))
    async with serving(create_app(store, no_build, None, console=console)) as server:  # type: ignore[arg-type]
        yield url_of(server)


async def test_decisions_won_and_lost_tasks_open_both_runs(page: Page, base_url: str) -> None:
    await page.goto(f"{base_url}/console/deployments")
    await expect(page.locator("tr[data-alias='agent'] .alias-target")).to_have_text("a1")
    await expect(page.locator("table.decisions tbody tr")).to_have_count(3)
    await expect(page.locator("tr[data-adapter='a1']")).to_contain_text("deployed")
    await expect(page.get_by_role("link", name=HOSTILE_ADAPTER)).to_be_visible()  # shown as text
    await shoot(page, "deployments")

    await page.get_by_role("link", name="a2", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Adapter a2")
    await expect(page.locator(".split")).to_contain_text("won 1 · lost 3 · both solved 3")
    await expect(page.locator("tr[data-figure='success'] td")).to_have_text(["50.0% (4/8)", "75.0% (6/8)"])
    await expect(page.locator(".won-tasks tbody tr")).to_have_count(1)
    await expect(page.locator(".lost-tasks tbody tr")).to_have_count(3)
    await shoot(page, "deployments-decision")

    await page.get_by_role("link", name="candidate run of t7").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Evaluation run trace-a2-t7")
    await expect(page.locator(".checker-detail")).to_contain_text("answer matched")
    await page.go_back()
    await page.get_by_role("link", name="compared run of t2").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Evaluation run trace-a1-t2")
    await expect(page.locator("strong.verdict-passed")).to_have_text("passed")
    await page.get_by_role("link", name="Back to the deployment").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Adapter a2")

    await page.get_by_role("link", name="candidate run of t2").click()  # a lost task: the candidate failed
    await expect(page.locator(".checker-detail")).to_contain_text("expected price 2.50 <script>document.title=")
    await expect(page.locator("article[data-index='2'] pre")).to_contain_text("<img src=x onerror=")
    assert await page.title() == "Run trace-a2-t2 · tracewheel console"  # the hostile script did not run
    await shoot(page, "run")


async def test_deploy_roll_back_and_move_the_alias_from_the_page(
    page: Page, base_url: str, peers: DeploymentPeers
) -> None:
    answers = accept_dialogs(page)
    await page.goto(f"{base_url}/console/deployments/a2")
    await page.get_by_role("button", name="Deploy this adapter").click()
    await expect(page.locator("#notice")).to_have_text("alias agent: a1 -> a2")
    assert answers[-1] == "Deploy a2: move alias agent from a1 to a2?"
    assert peers.registry.aliases["agent"] == "a2"
    await expect(page.locator(".alias-now")).to_have_text("a2")

    await page.get_by_role("button", name="Roll back alias agent").click()
    await expect(page.locator("#notice")).to_have_text("alias agent: a2 -> a1 (rolled back)")
    assert answers[-1] == "Roll back alias agent (now on a2) to its previous target?"
    assert (await served_aliases(peers.inference))["agent"] == "a1"
    await expect(page.locator(".alias-now")).to_have_text("a1")

    await page.goto(f"{base_url}/console/deployments")
    await page.get_by_label("New target of alias agent").select_option("tiny")
    await page.get_by_role("button", name="Move alias agent").click()
    await expect(page.locator("#notice")).to_have_text("alias agent: a1 -> tiny")
    await expect(page.locator("tr[data-alias='agent'] .alias-target")).to_have_text("tiny")
    assert await served_aliases(peers.inference) == {"agent": "tiny", "canary": "tiny"}

    await page.get_by_role("button", name="Roll back alias canary").click()  # canary never moved
    await expect(page.locator("#banner-text")).to_contain_text("alias 'canary' has no earlier target")
    assert peers.registry.aliases["canary"] == "tiny"


async def test_a_dismissed_confirm_changes_nothing(page: Page, base_url: str, peers: DeploymentPeers) -> None:
    async def dismiss(dialog: Dialog) -> None:
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.goto(f"{base_url}/console/deployments")
    await page.get_by_role("button", name="Roll back alias agent").click()
    await expect(page.locator("#notice")).to_be_hidden()
    assert peers.registry.aliases["agent"] == "a1"
