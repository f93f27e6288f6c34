"""What every browser tool handler works on: one session's tabs, refs and network log.

Elements are addressed by the refs of the last snapshot the model saw
(`page.aria_snapshot(mode="ai")` prints `[ref=e12]`; `page.locator("aria-ref=e12")` acts on
it). A ref the model took from an older snapshot fails fast with a message saying to take a
new snapshot, instead of waiting out the action timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from playwright.async_api import BrowserContext, Locator, Page, Request
from playwright.async_api import Error as PlaywrightError

from tracewheel.gateway.browser.base import PolicyBlockedError, StaleRefError, ToolError
from tracewheel.gateway.browser.compact import compact_snapshot
from tracewheel.gateway.browser.guard import BlockedRequest, NetworkGuard, is_top_level_navigation
from tracewheel.gateway.browser.incremental import snapshot_changes
from tracewheel.gateway.results import Part, TextPart

logger = logging.getLogger(__name__)

T = TypeVar("T")
_REF = re.compile(r"\[ref=([A-Za-z0-9]+)\]")
_REF_SHAPE = re.compile(r"^(f\d+)?e\d+$")
_MAX_BLOCKED_LINES = 5
# how an incremental report's sections read (browser/incremental.py)
UNCHANGED_LINE = "- Page Snapshot: unchanged since the last snapshot of this page"
CHANGED_HEADER = "- Page Snapshot changes (the rest, refs included, is as in the last snapshot of this page):"
REMOVED_HEADER = "- Removed from the page:"


@dataclass(frozen=True)
class Timeouts:
    """Seconds a tool waits.

    Attributes:
        action: for an element to be actionable (click, type…).
        navigation: for a page to load.
        settle: for the requests an action started to finish before the snapshot is taken.
    """

    action: float = 5.0
    navigation: float = 30.0
    settle: float = 5.0


class ToolContext:
    """The tabs of one browser context and what the tools need to act on them.

    Args:
        context: the session's Playwright browser context (already guarded).
        guard: the context's NetworkGuard, read after each action.
        timeouts: how long tools wait.
        compact_snapshots: render snapshots in the compact style (`browser/compact.py`).
        incremental_snapshots: an action's report shows only what changed on a page the model
            has seen (`browser/incremental.py`).
    """

    def __init__(
        self,
        context: BrowserContext,
        guard: NetworkGuard,
        timeouts: Timeouts,
        compact_snapshots: bool = False,
        incremental_snapshots: bool = False,
    ) -> None:
        self.context = context
        self.guard = guard
        self.timeouts = timeouts
        self.compact_snapshots = compact_snapshots
        self.incremental_snapshots = incremental_snapshots
        self._pages: list[Page] = []
        self._current: Page | None = None
        self._refs: dict[Page, set[str]] = {}
        self._shown: dict[Page, tuple[str, str]] = {}
        """Per tab, the URL and snapshot text of the page as the model last saw it (whole or by changes)."""
        context.on("page", self._track)

    # tabs

    @property
    def pages(self) -> list[Page]:
        """Open tabs, in the order they opened."""
        return list(self._pages)

    @property
    def page(self) -> Page:
        """The current tab.

        Raises:
            ToolError: no tab is open.
        """
        if self._current is None:
            raise ToolError("No open tab. Call browser_navigate or browser_tabs with action 'new' to open one.")
        return self._current

    async def ensure_page(self) -> Page:
        """The current tab, opening one when none is."""
        if self._current is None:
            await self.new_page()
        return self.page

    async def new_page(self) -> Page:
        """Opens a blank tab and makes it current."""
        page = await self.context.new_page()
        self._track(page)
        self._current = page
        return page

    def select(self, index: int) -> Page:
        """Makes tab `index` current.

        Raises:
            ToolError: there is no such tab.
        """
        self._current = self._tab(index)
        return self._current

    async def close_page(self, index: int | None = None) -> None:
        """Closes tab `index` (the current one by default).

        Raises:
            ToolError: there is no such tab.
        """
        page = self.page if index is None else self._tab(index)
        await page.close()
        self._forget(page)

    async def close_all(self) -> None:
        """Closes every tab; the context (cookies, storage) stays."""
        for page in self.pages:
            await page.close()
            self._forget(page)

    def _tab(self, index: int) -> Page:
        if not 0 <= index < len(self._pages):
            count = len(self._pages)
            raise ToolError(f"Tab {index} does not exist; there are {count} tab(s), numbered from 0.")
        return self._pages[index]

    def _track(self, page: Page) -> None:
        if page in self._pages:
            return
        self._pages.append(page)
        page.on("close", self._forget)
        if self._current is None:
            self._current = page

    def _forget(self, page: Page) -> None:
        if page not in self._pages:
            return
        self._pages.remove(page)
        self._refs.pop(page, None)
        self._shown.pop(page, None)
        if self._current is page:
            self._current = self._pages[-1] if self._pages else None

    # elements

    async def locator(self, ref: str, element: str | None = None) -> Locator:
        """The element `ref` names in the current tab's last snapshot.

        Raises:
            StaleRefError: the ref is not in that snapshot or its element is gone.
        """
        page = self.page
        stale = StaleRefError(
            f"Ref {ref} not found in the current page snapshot. Call browser_snapshot to get fresh refs, then retry."
        )
        if not _REF_SHAPE.match(ref) or ref not in self._refs.get(page, set()):
            raise stale
        locator = page.locator(f"aria-ref={ref}")
        if element:
            locator = locator.describe(element)
        if await locator.count() == 0:
            raise stale
        return locator

    # actions

    async def run_action(self, action: Callable[[], Awaitable[T]], *, expect_new_tab: bool = False) -> T:
        """Runs `action`, then waits for the navigations and requests it started.

        New tabs it opened are tracked before it returns, and every request it started has
        ended (or `timeouts.settle` passed), so what the URL policy blocked is in the guard's
        log. A new tab can be announced after the action returns; `expect_new_tab` (a click on
        a target=_blank link) waits for it.
        """
        watch = _ActionWatch(self.context)
        try:
            result = await action()
            if expect_new_tab and not watch.opened:
                with contextlib.suppress(PlaywrightError):
                    await self.context.wait_for_event("page", timeout=self.timeouts.settle * 1000)
            await self._settle(watch)
        finally:
            watch.stop()
        return result

    async def _settle(self, watch: _ActionWatch) -> None:
        navigations = [r for r in watch.requests if is_top_level_navigation(r)]
        if any(_frame_pending(r) for r in navigations) and not watch.opened:
            # A new tab's first request comes before its page object; wait for the page.
            with contextlib.suppress(PlaywrightError):
                await self.context.wait_for_event("page", timeout=self.timeouts.settle * 1000)
        pages = {r.frame.page for r in navigations if not _frame_pending(r)} | set(watch.opened)
        for page in pages:
            self._track(page)
        # Errors (a tab closed, a slow load) leave the page as it is; the report shows it.
        timeout_ms = self.timeouts.navigation * 1000
        await asyncio.gather(
            *(p.wait_for_load_state("domcontentloaded", timeout=timeout_ms) for p in pages), return_exceptions=True
        )
        # Subresources (images, frames) are announced up to `load`; give them the settle time.
        settle_ms = self.timeouts.settle * 1000
        await asyncio.gather(*(p.wait_for_load_state("load", timeout=settle_ms) for p in pages), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.all_ended(), self.timeouts.settle)

    # reports

    async def snapshot(self, page: Page | None = None, depth: int | None = None) -> str:
        """The aria snapshot of a tab (the current one by default); its refs become current.

        Every ref of the page counts as current, also those the compact style does not print.
        """
        page = page or self.page
        text = await page.aria_snapshot(mode="ai", depth=depth, timeout=self.timeouts.navigation * 1000)
        self._refs[page] = set(_REF.findall(text))
        return compact_snapshot(text) if self.compact_snapshots else text

    async def tabs_markdown(self) -> str:
        """One line per tab: `- 0: (current) [Title](url)`."""
        lines = []
        for index, page in enumerate(self._pages):
            current = "(current) " if page is self._current else ""
            lines.append(f"- {index}: {current}[{await _title(page)}]({page.url})")
        return "\n".join(lines) if lines else "No open tabs. Navigate to a URL to create one."

    async def page_state(
        self, *, include_snapshot: bool = True, depth: int | None = None, changes_only: bool = False
    ) -> str:
        """The current tab as @playwright/mcp reports it: URL, title and snapshot.

        With `changes_only` (and incremental snapshots on), a page the model last saw at the same
        URL in this tab is reported by what changed since (`browser/incremental.py`).
        """
        page = self.page
        lines = ["### Page state", f"- Page URL: {page.url}", f"- Page Title: {await _title(page)}"]
        if not include_snapshot:
            return "\n".join(lines)
        snapshot = await self.snapshot(page, depth)
        changes = None
        if self.incremental_snapshots:
            seen = self._shown.get(page)
            self._shown[page] = (page.url, snapshot)
            if changes_only and depth is None and seen and seen[0] == page.url:
                changes = snapshot_changes(seen[1], snapshot)
        if changes is None:
            lines += ["- Page Snapshot:", "```yaml", snapshot, "```"]
        elif not any(changes):
            lines.append(UNCHANGED_LINE)
        else:
            changed, removed = changes
            if changed:
                lines += [CHANGED_HEADER, "```yaml", changed, "```"]
            if removed:
                lines += [REMOVED_HEADER, "```yaml", removed, "```"]
        return "\n".join(lines)

    async def report(self, mark: int, *, result: str | None = None, include_snapshot: bool = True) -> list[Part]:
        """The answer of an action: its result line, blocked requests, tabs, page state.

        Raises:
            PolicyBlockedError: the action led a tab to a URL the policy refused.
        """
        blocked = self.guard.blocked_since(mark)
        navigation = next((b for b in blocked if b.navigation), None)
        if navigation is not None:
            raise PolicyBlockedError(blocked_navigation_message(navigation))
        sections = [result] if result else []
        if blocked:
            sections.append(blocked_markdown(blocked))
        if len(self._pages) > 1:
            sections.append("### Open tabs\n" + await self.tabs_markdown())
        if self._current is not None:
            sections.append(await self.page_state(include_snapshot=include_snapshot, changes_only=True))
        return [TextPart("\n".join(sections))]


class _ActionWatch:
    """The requests and tabs an action starts, and which of those requests have ended."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.requests: list[Request] = []
        self.opened: list[Page] = []
        self._ended: set[Request] = set()
        self._changed = asyncio.Event()
        context.on("request", self._on_request)
        context.on("requestfinished", self._on_end)
        context.on("requestfailed", self._on_end)
        context.on("page", self._on_page)

    def _on_request(self, request: Request) -> None:
        self.requests.append(request)
        self._changed.set()

    def _on_end(self, request: Request) -> None:
        self._ended.add(request)
        self._changed.set()

    def _on_page(self, page: Page) -> None:
        self.opened.append(page)

    async def all_ended(self) -> None:
        """Returns once every request seen so far (and any they lead to) has finished or failed."""
        while any(r not in self._ended for r in self.requests):
            self._changed.clear()
            await self._changed.wait()

    def stop(self) -> None:
        self.context.remove_listener("request", self._on_request)
        self.context.remove_listener("requestfinished", self._on_end)
        self.context.remove_listener("requestfailed", self._on_end)
        self.context.remove_listener("page", self._on_page)


def _frame_pending(request: Request) -> bool:
    try:
        request.frame  # noqa: B018 - raises while the request's frame does not exist yet
    except PlaywrightError:
        return True
    return False


async def _title(page: Page) -> str:
    try:
        return await page.title()
    except PlaywrightError:  # the page is navigating or closing
        return ""


def blocked_navigation_message(blocked: BlockedRequest, requested: str | None = None) -> str:
    """What the model reads when the policy stopped a navigation."""
    start = requested or blocked.redirected_from or blocked.url
    reason = blocked.reason if start == blocked.url else f"it redirected to {blocked.url}, and {blocked.reason}"
    return (
        f"Navigation to {start} blocked by the gateway's URL policy: {reason}. "
        "Choose another URL; this one will stay blocked."
    )


def blocked_markdown(blocked: list[BlockedRequest]) -> str:
    """A short list of the subresources the policy stopped during an action."""
    lines = ["### Blocked by the gateway's URL policy"]
    lines += [f"- {b.url}: {b.reason}" for b in blocked[:_MAX_BLOCKED_LINES]]
    if len(blocked) > _MAX_BLOCKED_LINES:
        lines.append(f"- … and {len(blocked) - _MAX_BLOCKED_LINES} more")
    return "\n".join(lines)
