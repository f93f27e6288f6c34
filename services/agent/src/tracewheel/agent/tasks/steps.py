"""Builders of reference steps in terms of @playwright/mcp's browser tools."""

from __future__ import annotations

from tracewheel.agent.tasks.model import Step, Target


def navigate(url: str, why: str) -> Step:
    """`browser_navigate{url}`."""
    return Step("browser_navigate", {"url": url}, why)


def click(role: str, name: str, why: str) -> Step:
    """`browser_click{element, ref}` on the element with this role and name."""
    return Step("browser_click", {}, why, Target(role, name))


def type_text(role: str, name: str, text: str, why: str, submit: bool = False) -> Step:
    """`browser_type{element, ref, text, submit}`; `submit` presses Enter afterwards."""
    return Step("browser_type", {"text": text, "submit": submit}, why, Target(role, name))


def select_option(role: str, name: str, values: list[str], why: str) -> Step:
    """`browser_select_option{element, ref, values}`."""
    return Step("browser_select_option", {"values": values}, why, Target(role, name))


def select_tab(index: int, why: str) -> Step:
    """`browser_tabs{action: "select", index}`."""
    return Step("browser_tabs", {"action": "select", "index": index}, why)


def search_and_open(name: str, purpose: str) -> list[Step]:
    """Search the shop for an item by name and open its detail page `purpose` ("to read its price")."""
    return [
        type_text("searchbox", "Search", name, f"Search for the {name}.", submit=True),
        click("link", name, f"Open the {name} {purpose}."),
    ]
