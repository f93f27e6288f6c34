"""Element and keyboard tools: browser_click, browser_type, browser_fill_form,
browser_select_option, browser_press_key, browser_hover.

Each acts on a ref from the last snapshot, waits for what the action started (navigations,
requests, new tabs) and answers with the page state and a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tracewheel.gateway.browser.base import ELEMENT_DESCRIPTION, REF, ToolDefinition, ToolError, object_schema
from tracewheel.gateway.browser.context import ToolContext
from tracewheel.gateway.results import Part

FIELD_TYPES = ("textbox", "checkbox", "radio", "combobox", "slider")


# Whether clicking the element opens a new tab: a link or form with a target of its own, or a
# link clicked with the middle button or a modifier that opens links in a new tab.
_OPENS_NEW_TAB_JS = """(el, forced) => {
  const owner = el.closest('a[href], area[href], form');
  if (!owner) return false;
  const target = (owner.getAttribute('target') || '').toLowerCase();
  if (target && !['_self', '_parent', '_top'].includes(target)) return true;
  return forced && owner.tagName !== 'FORM';
}"""
_NEW_TAB_MODIFIERS = {"Control", "ControlOrMeta", "Meta", "Shift"}


async def _opens_new_tab(locator: Locator, args: dict[str, Any]) -> bool:
    forced = args.get("button") == "middle" or bool(_NEW_TAB_MODIFIERS & set(args.get("modifiers", ())))
    try:
        return bool(await locator.evaluate(_OPENS_NEW_TAB_JS, forced, timeout=1000))
    except PlaywrightError:  # detached or slow: act without waiting for a tab
        return False


async def _act(
    ctx: ToolContext,
    args: dict[str, Any],
    verb: str,
    action: Callable[[Locator], Awaitable[Any]],
    *,
    may_open_tab: bool = False,
) -> int:
    """Runs `action` on the element `args` names; returns the guard mark taken before it."""
    locator = await ctx.locator(args["ref"], args.get("element"))
    expect_new_tab = may_open_tab and await _opens_new_tab(locator, args)
    mark = ctx.guard.mark()
    try:
        await ctx.run_action(lambda: action(locator), expect_new_tab=expect_new_tab)
    except PlaywrightTimeoutError as exc:
        name = args.get("element") or args["ref"]
        raise ToolError(
            f"Could not {verb} {name} (ref {args['ref']}) within {ctx.timeouts.action:g} s: the element may be "
            "hidden, disabled or covered. Take a new snapshot and try another element."
        ) from exc
    return mark


async def click(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Clicks (or double-clicks) an element.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    options: dict[str, Any] = {"timeout": ctx.timeouts.action * 1000}
    if "button" in args:
        options["button"] = args["button"]
    if "modifiers" in args:
        options["modifiers"] = args["modifiers"]

    async def do(locator: Locator) -> None:
        if args.get("doubleClick"):
            await locator.dblclick(**options)
        else:
            await locator.click(**options)

    return await ctx.report(await _act(ctx, args, "click", do, may_open_tab=True))


async def type_text(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Fills (or types key by key) text into an editable element, optionally pressing Enter.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    timeout = ctx.timeouts.action * 1000

    async def do(locator: Locator) -> None:
        if args.get("slowly"):
            await locator.press_sequentially(args["text"], timeout=timeout)
        else:
            await locator.fill(args["text"], timeout=timeout)
        if args.get("submit"):
            await locator.press("Enter", timeout=timeout)

    return await ctx.report(await _act(ctx, args, "type into", do))


async def fill_form(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Fills several fields: text boxes and sliders, check boxes and radios, combo boxes.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    mark = ctx.guard.mark()
    timeout = ctx.timeouts.action * 1000
    for field in args["fields"]:
        kind, value = field["type"], field["value"]

        async def do(locator: Locator, kind: str = kind, value: str = value) -> None:
            if kind in ("textbox", "slider"):
                await locator.fill(value, timeout=timeout)
            elif kind in ("checkbox", "radio"):
                await locator.set_checked(value.strip().lower() == "true", timeout=timeout)
            else:
                await locator.select_option(label=value, timeout=timeout)

        await _act(ctx, {"ref": field["ref"], "element": field["name"]}, f"fill ({kind})", do)
    return await ctx.report(mark, result=f"Filled {len(args['fields'])} field(s).")


async def select_option(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Selects options (by value or label) in a <select>.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    timeout = ctx.timeouts.action * 1000

    async def do(locator: Locator) -> None:
        await locator.select_option(args["values"], timeout=timeout)

    return await ctx.report(await _act(ctx, args, "select an option of", do))


async def hover(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Moves the mouse over an element.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    timeout = ctx.timeouts.action * 1000

    async def do(locator: Locator) -> None:
        await locator.hover(timeout=timeout)

    return await ctx.report(await _act(ctx, args, "hover over", do))


async def press_key(ctx: ToolContext, args: dict[str, Any]) -> list[Part]:
    """Presses a key (or a character) on the focused element of the current tab.

    Raises:
        ToolError: a failure the model can act on (shown to it as an error result).
    """
    page = ctx.page
    mark = ctx.guard.mark()
    await ctx.run_action(lambda: page.keyboard.press(args["key"]))
    return await ctx.report(mark)


def _element_schema(extra: dict[str, Any] | None = None, required: tuple[str, ...] = ("ref",)) -> dict[str, Any]:
    return object_schema({"element": ELEMENT_DESCRIPTION, "ref": REF, **(extra or {})}, required=required)


_CLICK_EXTRA = {
    "doubleClick": {"description": "Whether to perform a double click instead of a single click", "type": "boolean"},
    "button": {
        "description": "Button to click, defaults to left",
        "type": "string",
        "enum": ["left", "right", "middle"],
    },
    "modifiers": {
        "description": "Modifier keys to press",
        "type": "array",
        "items": {"type": "string", "enum": ["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]},
    },
}
_TYPE_EXTRA = {
    "text": {"type": "string", "description": "Text to type into the element"},
    "submit": {"description": "Whether to submit entered text (press Enter after)", "type": "boolean"},
    "slowly": {
        "description": "Whether to type one character at a time. Useful for triggering key handlers in the page. "
        "By default entire text is filled in at once.",
        "type": "boolean",
    },
}
_FIELD = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Human-readable field name"},
        "type": {"type": "string", "enum": list(FIELD_TYPES), "description": "Type of the field"},
        "ref": {"type": "string", "description": "Exact target field reference from the page snapshot"},
        "selector": {
            "description": 'CSS or role selector for the field element, when "ref" is not available. '
            'Either "selector" or "ref" is required.',
            "type": "string",
        },
        "value": {
            "type": "string",
            "description": "Value to fill in the field. If the field is a checkbox, the value should be `true` or "
            "`false`. If the field is a combobox, the value should be the text of the option.",
        },
    },
    "required": ["name", "type", "ref", "value"],
    "additionalProperties": False,
}
_VALUES = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Array of values to select in the dropdown. This can be a single value or multiple values.",
}
_KEY = {
    "type": "string",
    "description": "Name of the key to press or a character to generate, such as `ArrowLeft` or `a`",
}


def _tool(
    name: str, title: str, description: str, schema: dict[str, Any], capability: str, handler: Any
) -> ToolDefinition:
    return ToolDefinition(name, title, description, schema, capability, read_only=False, handler=handler)


TOOLS = [
    _tool("browser_click", "Click", "Perform click on a web page", _element_schema(_CLICK_EXTRA), "core", click),
    _tool(
        "browser_type",
        "Type text",
        "Type text into editable element",
        _element_schema(_TYPE_EXTRA, required=("ref", "text")),
        "core-input",
        type_text,
    ),
    _tool(
        "browser_fill_form",
        "Fill form",
        "Fill multiple form fields",
        object_schema({"fields": {"type": "array", "items": _FIELD, "description": "Fields to fill in"}}, ("fields",)),
        "core",
        fill_form,
    ),
    _tool(
        "browser_select_option",
        "Select option",
        "Select an option in a dropdown",
        _element_schema({"values": _VALUES}, required=("ref", "values")),
        "core",
        select_option,
    ),
    _tool(
        "browser_press_key",
        "Press a key",
        "Press a key on the keyboard",
        object_schema({"key": _KEY}, ("key",)),
        "core-input",
        press_key,
    ),
    _tool("browser_hover", "Hover mouse", "Hover over element on page", _element_schema(), "core", hover),
]
