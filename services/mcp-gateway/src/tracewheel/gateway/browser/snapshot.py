"""The page snapshot tool: browser_snapshot (capability core)."""

from __future__ import annotations

from typing import Any

from tracewheel.gateway.browser.base import ToolDefinition, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import BlobPart, Part, TextPart


async def snapshot(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """The current tab's accessibility snapshot, inline or saved to a markdown file.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    await ctx.ensure_page()
    depth = int(args["depth"]) if "depth" in args else None
    sections = []
    if len(ctx.pages) > 1:
        sections.append("### Open tabs\n" + await ctx.tabs_markdown())
    if "filename" not in args:
        sections.append(await ctx.page_state(depth=depth))
        return [TextPart("\n".join(sections))]
    sections.append(await ctx.page_state(include_snapshot=False))
    text = await ctx.snapshot(depth=depth)
    return [TextPart("\n".join(sections)), BlobPart(text.encode(), "text/markdown", args["filename"], label="snapshot")]


TOOLS = [
    ToolDefinition(
        name="browser_snapshot",
        title="Page snapshot",
        description="Capture accessibility snapshot of the current page, this is better than screenshot",
        input_schema=object_schema(
            {
                "filename": {
                    "description": "Save snapshot to markdown file instead of returning it in the response.",
                    "type": "string",
                },
                "depth": {"description": "Limit the depth of the snapshot tree", "type": "number"},
            }
        ),
        capability="core",
        read_only=True,
        handler=snapshot,
    ),
]
