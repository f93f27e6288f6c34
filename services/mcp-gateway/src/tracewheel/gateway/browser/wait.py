"""The wait tool: browser_wait_for (capability core).

Waiting a given time is what the model asked for, so it sleeps (at most 30 s, as newer
@playwright/mcp releases cap it); waiting for text uses Playwright's own wait on the locator.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tracewheel.gateway.browser.base import ToolDefinition, ToolError, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import Part

MAX_WAIT_S = 30.0


async def wait_for(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Waits for a time, for text to appear, and/or for text to disappear.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    if not any(args.get(key) for key in ("time", "text", "textGone")):
        raise ToolError("Give at least one of time (seconds), text or textGone.")
    if args.get("time"):
        await asyncio.sleep(min(MAX_WAIT_S, max(0.0, float(args["time"]))))
    page = ctx.page
    timeout = ctx.timeouts.navigation
    waits: tuple[tuple[str, Literal["hidden", "visible"]], ...] = (("textGone", "hidden"), ("text", "visible"))
    for key, state in waits:
        if not args.get(key):
            continue
        try:
            await page.get_by_text(args[key]).first.wait_for(state=state, timeout=timeout * 1000)
        except PlaywrightTimeoutError as exc:
            verb = "appear" if state == "visible" else "disappear"
            raise ToolError(f"Text {args[key]!r} did not {verb} within {timeout:g} s in the current tab.") from exc
    waited = args.get("text") or args.get("textGone") or args.get("time")
    return await ctx.report(ctx.guard.mark(), result=f"Waited for {waited}")


TOOLS = [
    ToolDefinition(
        name="browser_wait_for",
        title="Wait for",
        description="Wait for text to appear or disappear or a specified time to pass",
        input_schema=object_schema(
            {
                "time": {"description": "The time to wait in seconds", "type": "number"},
                "text": {"description": "The text to wait for", "type": "string"},
                "textGone": {"description": "The text to wait for to disappear", "type": "string"},
            }
        ),
        capability="core",
        read_only=True,
        handler=wait_for,
    ),
]
