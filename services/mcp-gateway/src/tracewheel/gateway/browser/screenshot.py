"""The screenshot tool: browser_take_screenshot (capability core).

The image is saved as an attachment (see results.py); the model reads the file's path.
"""

from __future__ import annotations

from typing import Any

from tracewheel.gateway.browser.base import ToolDefinition, ToolError, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import BlobPart, Part, TextPart


async def take_screenshot(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """A PNG or JPEG of the viewport, the full page, or one element.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    image_type = args.get("type", "png")
    mime_type = f"image/{image_type}"
    timeout = ctx.timeouts.action * 1000
    if "ref" in args:
        if args.get("fullPage"):
            raise ToolError("fullPage cannot be used with element screenshots; leave out ref or fullPage.")
        locator = await ctx.locator(args["ref"], args.get("element"))
        data = await locator.screenshot(type=image_type, timeout=timeout)
        what = f"element {args.get('element') or args['ref']}"
    else:
        page = await ctx.ensure_page()
        data = await page.screenshot(type=image_type, full_page=bool(args.get("fullPage")), timeout=timeout)
        what = "full page" if args.get("fullPage") else "viewport"
    return [
        TextPart(f"Took a screenshot of the {what} of {ctx.page.url}."),
        BlobPart(data, mime_type, args.get("filename"), label="screenshot"),
    ]


TOOLS = [
    ToolDefinition(
        name="browser_take_screenshot",
        title="Take a screenshot",
        description="Take a screenshot of the current page. You can't perform actions based on the screenshot, "
        "use browser_snapshot for actions.",
        input_schema=object_schema(
            {
                "type": {
                    "default": "png",
                    "description": "Image format for the screenshot. Default is png.",
                    "type": "string",
                    "enum": ["png", "jpeg"],
                },
                "filename": {
                    "description": "File name to save the screenshot to. Defaults to `page-{timestamp}.{png|jpeg}` if "
                    "not specified. Prefer relative file names to stay within the output directory.",
                    "type": "string",
                },
                "element": {
                    "description": "Human-readable element description used to obtain permission to screenshot the "
                    "element. If not provided, the screenshot will be taken of viewport. If element is provided, ref "
                    "must be provided too.",
                    "type": "string",
                },
                "ref": {
                    "description": "Exact target element reference from the page snapshot. If not provided, the "
                    "screenshot will be taken of viewport. If ref is provided, element must be provided too.",
                    "type": "string",
                },
                "fullPage": {
                    "description": "When true, takes a screenshot of the full scrollable page, instead of the "
                    "currently visible viewport. Cannot be used with element screenshots.",
                    "type": "boolean",
                },
            },
            required=("type",),
        ),
        capability="core",
        read_only=True,
        handler=take_screenshot,
    ),
]
