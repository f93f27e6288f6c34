"""Browser sessions: one isolated browser context each, on one shared chromium.

A session owns a browser context (its cookies, storage and tabs are its own), a NetworkGuard
(URL policy at the network layer) and the subset of tools it was opened with. Calls within a
session run one at a time; sessions run concurrently. The SessionManager caps how many exist,
closes those idle for too long, and relaunches chromium for new sessions if it crashed (the
sessions that lived in the crashed browser answer with an error and are reaped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tracewheel.core.errors import NotFound, ResourceExhausted, Unavailable
from tracewheel.gateway.browser.base import ToolDefinition, ToolError
from tracewheel.gateway.browser.context import Timeouts, ToolContext
from tracewheel.gateway.browser.guard import NetworkGuard
from tracewheel.gateway.browser.registry import select_tools, validate_arguments
from tracewheel.gateway.browser_options import BrowserConfig
from tracewheel.gateway.results import ResultRenderer, ToolResult

logger = logging.getLogger(__name__)

CRASHED_MESSAGE = "The browser of this session crashed or was closed; the session is gone. Open a new session."


class SessionNotFound(NotFound):
    """No session has this id (never opened, closed, or reaped after idling)."""


class SessionLimitReached(ResourceExhausted):
    """Every session slot is taken."""


class BrowserUnavailable(Unavailable):
    """chromium cannot be found or started."""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BrowserSession:
    """One isolated browser context with its own tools; made by SessionManager.open."""

    def __init__(
        self,
        session_id: str,
        context: BrowserContext,
        guard: NetworkGuard,
        tools: Iterable[ToolDefinition],
        renderer: ResultRenderer,
        timeouts: Timeouts,
        clock: Callable[[], float],
        compact_snapshots: bool = False,
        incremental_snapshots: bool = False,
    ) -> None:
        self.id = session_id
        self.tools = {tool.name: tool for tool in tools}
        self._context = context
        self._guard = guard
        self._renderer = renderer
        self._clock = clock
        self._lock = asyncio.Lock()
        self._busy = 0
        self.tool_context = ToolContext(context, guard, timeouts, compact_snapshots, incremental_snapshots)
        self.created_at = clock()
        self.last_used = self.created_at
        self.closed = False
        self.crashed = False
        context.on("close", self._on_context_close)

    @property
    def busy(self) -> bool:
        """Whether a tool call is running or waiting."""
        return self._busy > 0

    def idle_for(self) -> float:
        """Seconds since the last call started or ended."""
        return self._clock() - self.last_used

    def list_tools(self) -> list[ToolDefinition]:
        """This session's tools."""
        return list(self.tools.values())

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Runs a tool. Failures the model can act on come back as `is_error` results, not exceptions.

        Raises:
            OSError: an attachment could not be written.
        """
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools))
            return self._renderer.error(f"Unknown tool {name!r}. The tools of this session are: {known}.")
        self._busy += 1
        self.last_used = self._clock()
        try:
            async with self._lock:
                return await self._run(tool, arguments)
        finally:
            self._busy -= 1
            self.last_used = self._clock()

    async def _run(self, tool: ToolDefinition, arguments: dict[str, Any] | None) -> ToolResult:
        if self.closed or self.crashed:
            return self._renderer.error(CRASHED_MESSAGE)
        try:
            args = validate_arguments(tool, arguments)
            parts = await tool.handler(self.tool_context, args)
        except ToolError as exc:
            logger.info("session %s: %s failed: %s", self.id, tool.name, exc)
            return self._renderer.error(str(exc), namespace=self.id)
        except PlaywrightTimeoutError as exc:
            return self._renderer.error(f"{tool.name} timed out: {_first_line(exc)}", namespace=self.id)
        except PlaywrightError as exc:
            if self.crashed or self.closed or not self._browser_connected():
                self.crashed = True
                logger.warning("session %s: browser gone during %s: %s", self.id, tool.name, _first_line(exc))
                return self._renderer.error(CRASHED_MESSAGE)
            logger.info("session %s: %s failed: %s", self.id, tool.name, _first_line(exc))
            return self._renderer.error(f"{tool.name} failed: {_first_line(exc)}", namespace=self.id)
        return self._renderer.render(parts, namespace=self.id)

    def _browser_connected(self) -> bool:
        browser = self._context.browser
        return browser is not None and browser.is_connected()

    def _on_context_close(self, _context: BrowserContext) -> None:
        if not self.closed:
            self.crashed = True

    async def cookies(self) -> list[dict[str, Any]]:
        """The context's cookies (for tests and debugging)."""
        return [dict(cookie) for cookie in await self._context.cookies()]

    async def close(self) -> None:
        """Closes the context and its egress proxy; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(PlaywrightError):
            await self._context.close()
        await self._guard.close()


class SessionManager:
    """Opens, finds, reaps and closes browser sessions on one shared chromium.

    Args:
        config: browser and session settings.
        clock: monotonic seconds (injectable for idle-timeout tests).
    """

    def __init__(self, config: BrowserConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._sessions: dict[str, BrowserSession] = {}
        self._reserved = 0
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._launch_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self.renderer = ResultRenderer(config.attachments_dir, config.max_result_chars)

    @property
    def browser(self) -> Browser | None:
        """The chromium sessions open in now (None before `start`)."""
        return self._browser

    async def __aenter__(self) -> SessionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Starts Playwright, launches chromium and the idle reaper.

        Raises:
            BrowserUnavailable: chromium is missing or does not start.
        """
        self._playwright = await async_playwright().start()
        await self._ensure_browser()
        if self.config.reap_interval_s > 0:
            self._reaper = asyncio.create_task(self._reap_forever(), name="browser-session-reaper")

    async def _ensure_browser(self) -> Browser:
        async with self._launch_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None:
                raise BrowserUnavailable("SessionManager.start() was not called")
            if self._browser is not None:
                logger.warning("chromium is gone (crashed or closed); launching a new one")
            executable = self.config.chromium_path or shutil.which("chromium")
            if executable is None:
                raise BrowserUnavailable("chromium is not on PATH; install Debian's chromium or set executable_path")
            try:
                self._browser = await self._playwright.chromium.launch(
                    executable_path=executable, headless=self.config.headless, args=list(self.config.launch_args)
                )
            except PlaywrightError as exc:
                raise BrowserUnavailable(f"chromium did not start: {_first_line(exc)}") from exc
            logger.info("launched chromium %s", self._browser.version)
            return self._browser

    async def open(
        self,
        *,
        tools: Iterable[str] | None = None,
        capabilities: Iterable[str] | None = None,
        renderer: ResultRenderer | None = None,
    ) -> BrowserSession:
        """A new session with the given tools (all by default; see `select_tools`).

        `renderer` renders this session's results (e.g. with its own length limit); default: the manager's.

        Raises:
            SessionLimitReached: `max_sessions` sessions are open.
            InvalidArgument: an unknown tool name or capability.
            BrowserUnavailable: chromium is missing or does not start.
        """
        selected = select_tools(tools, capabilities)
        if len(self._sessions) + self._reserved >= self.config.max_sessions:
            raise SessionLimitReached(
                f"all {self.config.max_sessions} browser sessions are in use; close one, or retry after idle "
                f"sessions are reaped ({self.config.idle_timeout_s:g} s without a call)"
            )
        self._reserved += 1
        try:
            session = await self._new_session(selected, renderer or self.renderer)
        finally:
            self._reserved -= 1
        self._sessions[session.id] = session
        logger.info("opened browser session %s with %d tools", session.id, len(selected))
        return session

    async def _new_session(self, tools: tuple[ToolDefinition, ...], renderer: ResultRenderer) -> BrowserSession:
        browser = await self._ensure_browser()
        guard = NetworkGuard(self.config.policy)
        await guard.start()
        width, height = self.config.viewport
        try:
            context = await browser.new_context(
                proxy=guard.proxy_settings(),
                service_workers="block",  # their fetches would bypass the route handler
                accept_downloads=False,
                viewport={"width": width, "height": height},
            )
            await guard.attach(context)
        except PlaywrightError as exc:
            await guard.close()
            raise BrowserUnavailable(f"could not open a browser context: {_first_line(exc)}") from exc
        timeouts = self.config.timeouts
        context.set_default_timeout(timeouts.action * 1000)
        context.set_default_navigation_timeout(timeouts.navigation * 1000)
        compact = self.config.snapshot_style == "compact"
        incremental = self.config.snapshot_mode == "incremental"
        return BrowserSession(
            uuid.uuid4().hex, context, guard, tools, renderer, timeouts, self._clock, compact, incremental
        )

    def get(self, session_id: str) -> BrowserSession:
        """The open session with this id.

        Raises:
            SessionNotFound: there is none.
        """
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"no browser session {session_id!r}; it was closed or reaped, open a new one")
        return session

    def sessions(self) -> list[BrowserSession]:
        """The open sessions."""
        return list(self._sessions.values())

    async def close(self, session_id: str) -> None:
        """Closes one session.

        Raises:
            SessionNotFound: there is no such session.
        """
        session = self.get(session_id)
        del self._sessions[session_id]
        await session.close()
        logger.info("closed browser session %s", session_id)

    async def reap_idle(self) -> list[str]:
        """Closes sessions idle longer than `idle_timeout_s` (never one mid-call) and crashed ones."""
        doomed = [
            s.id
            for s in self._sessions.values()
            if s.crashed or (not s.busy and s.idle_for() > self.config.idle_timeout_s)
        ]
        for session_id in doomed:
            with contextlib.suppress(SessionNotFound):
                await self.close(session_id)
        if doomed:
            logger.info("reaped %d browser session(s)", len(doomed))
        return doomed

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            try:
                await self.reap_idle()
            except Exception:  # the reaper must outlive one bad close
                logger.exception("reaping browser sessions failed")

    async def shutdown(self) -> None:
        """Closes every session, chromium and Playwright."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for session_id in list(self._sessions):
            await self.close(session_id)
        if self._browser is not None:
            with contextlib.suppress(PlaywrightError):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
