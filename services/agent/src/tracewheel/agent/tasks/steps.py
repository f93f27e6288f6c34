"""Builders of reference steps in terms of @playwright/mcp's browser tools."""

from __future__ import annotations

from tracewheel.agent.tasks.model import FormField, Step, Target


def navigate(url: str, why: str) -> Step:
    """`browser_navigate{url}`."""
    return Step("browser_navigate", {"url": url}, why)


def click(role: str, name: str, why: str) -> Step:
    """`browser_click{element, ref}` on the element with this role and name."""
    return Step("browser_click", {}, why, Target(role, name))


def type_text(role: str, name: str, text: str, why: str, submit: bool = False) -> Step:
    """`browser_type{element, ref, text, submit}`; `submit` presses Enter afterwards."""
    return Step("browser_type", {"text": text, "submit": submit}, why, Target(role, name))


def fill_form(fields: list[tuple[str, str, str, str]], why: str) -> Step:
    """`browser_fill_form{fields}`: each field given as (role, name, field type, value)."""
    return Step("browser_fill_form", {}, why, fields=tuple(FormField(Target(r, n), t, v) for r, n, t, v in fields))


def select_tab(index: int, why: str) -> Step:
    """`browser_tabs{action: "select", index}`."""
    return Step("browser_tabs", {"action": "select", "index": index}, why)


def search_and_open(name: str, purpose: str) -> list[Step]:
    """Search the shop for an item by name and open its detail page `purpose` ("to read its price")."""
    return [
        type_text("searchbox", "Search", name, f"Search for the {name}.", submit=True),
        click("link", name, f"Open the {name} {purpose}."),
    ]
