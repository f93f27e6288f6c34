"""browser_close (capability core): closes every tab of the session.

@playwright/mcp closes its browser context; here the context is the session's, so the tabs
close and the cookies and storage stay until the session ends. The next browser_navigate opens
a fresh tab.
"""

from __future__ import annotations

from typing import Any

from tracewheel.gateway.browser.base import ToolDefinition, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import Part, TextPart


async def close(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Closes all tabs.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    await ctx.close_all()
    return [TextPart("### Result\nNo open tabs. Navigate to a URL to create one.")]


TOOLS = [
    ToolDefinition(
        name="browser_close",
        title="Close browser",
        description="Close the page",
        input_schema=object_schema({}),
        capability="core",
        read_only=False,
        handler=close,
    ),
]
