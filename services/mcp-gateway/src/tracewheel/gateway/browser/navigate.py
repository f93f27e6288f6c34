"""Navigation tools: browser_navigate, browser_navigate_back (capability core-navigation)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tracewheel.gateway.browser.base import PolicyBlockedError, ToolDefinition, ToolError, object_schema
from tracewheel.gateway.browser.context import ToolContext, blocked_navigation_message
from tracewheel.gateway.policy import check_url_async, normalize_navigation_url
from tracewheel.gateway.results import Part


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _raise_if_blocked(ctx: ToolContext, mark: int, url: str) -> None:
    blocked = [b for b in ctx.guard.blocked_since(mark) if b.navigation]
    if blocked:
        raise PolicyBlockedError(blocked_navigation_message(blocked[0], requested=url))


async def navigate(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Loads a URL in the current tab (opening one if none), after checking the URL policy.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    url = normalize_navigation_url(args["url"])
    decision = await check_url_async(url, ctx.guard.policy)
    if not decision.resolved:
        raise ToolError(f"Navigation to {url} failed: {decision.reason}. Check the host name.")
    if not decision.allowed:
        raise PolicyBlockedError(
            f"Navigation to {url} blocked by the gateway's URL policy: {decision.reason}. "
            "Choose another URL; this one will stay blocked."
        )
    page = await ctx.ensure_page()
    mark = ctx.guard.mark()
    timeout = ctx.timeouts.navigation
    try:
        await ctx.run_action(lambda: page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000))
    except PlaywrightTimeoutError as exc:
        raise ToolError(
            f"Navigation to {url} timed out after {timeout:g} s. The page may still be loading: "
            "call browser_snapshot to see its state, or browser_wait_for."
        ) from exc
    except PlaywrightError as exc:
        _raise_if_blocked(ctx, mark, url)
        raise ToolError(f"Navigation to {url} failed: {_first_line(exc)}") from exc
    _raise_if_blocked(ctx, mark, url)
    return await ctx.report(mark)


async def navigate_back(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Goes back one entry in the current tab's history.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    page = ctx.page
    mark = ctx.guard.mark()
    timeout = ctx.timeouts.navigation
    try:
        await ctx.run_action(lambda: page.go_back(wait_until="domcontentloaded", timeout=timeout * 1000))
    except PlaywrightTimeoutError as exc:
        raise ToolError(f"Going back timed out after {timeout:g} s; call browser_snapshot to see the page.") from exc
    return await ctx.report(mark)


TOOLS = [
    ToolDefinition(
        name="browser_navigate",
        title="Navigate to a URL",
        description="Navigate to a URL",
        input_schema=object_schema(
            {"url": {"type": "string", "description": "The URL to navigate to"}},
            required=("url",),
        ),
        capability="core-navigation",
        read_only=False,
        handler=navigate,
    ),
    ToolDefinition(
        name="browser_navigate_back",
        title="Go back",
        description="Go back to the previous page in the history",
        input_schema=object_schema({}),
        capability="core-navigation",
        read_only=False,
        handler=navigate_back,
    ),
]
