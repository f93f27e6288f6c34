"""The tool list: same names, schemas and annotations as the pinned @playwright/mcp."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.errors import InvalidArgument
from tracewheel.gateway.browser.base import PLAYWRIGHT_MCP_VERSION, ToolError
from tracewheel.gateway.browser.registry import ALL_TOOLS, TOOLS_BY_NAME, select_tools, validate_arguments

PINNED = json.loads((Path(__file__).parent / f"playwright_mcp_{PLAYWRIGHT_MCP_VERSION}_core_tools.json").read_text())


@pytest.mark.parametrize("reference", PINNED, ids=[tool["name"] for tool in PINNED])
def test_tool_matches_playwright_mcp(reference: dict[str, Any]) -> None:
    tool = TOOLS_BY_NAME[reference["name"]]

    assert tool.description == reference["description"]
    assert tool.input_schema == reference["inputSchema"]
    assert tool.annotations() == reference["annotations"]


def test_every_tool_is_pinned() -> None:
    assert sorted(t.name for t in ALL_TOOLS) == sorted(t["name"] for t in PINNED)


def test_select_by_capability_and_name() -> None:
    tabs_and_snapshot = select_tools(names=["browser_snapshot"], capabilities=["core-tabs"])

    assert [t.name for t in tabs_and_snapshot] == ["browser_snapshot", "browser_tabs"]
    assert {t.capability for t in select_tools(capabilities=["core-navigation"])} == {"core-navigation"}
    assert select_tools() == ALL_TOOLS


@pytest.mark.parametrize("kwargs", [{"names": ["browser_teleport"]}, {"capabilities": ["vision"]}])
def test_unknown_names_are_refused(kwargs: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidArgument, match="unknown"):
        select_tools(**kwargs)


def test_validation_applies_defaults_like_zod() -> None:
    assert validate_arguments(TOOLS_BY_NAME["browser_take_screenshot"], None) == {"type": "png"}


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("browser_navigate", {}, "'url' is a required property"),
        ("browser_click", {"ref": 3}, "at ref: 3 is not of type 'string'"),
        ("browser_click", {"ref": "e1", "button": "back"}, "at button"),
        ("browser_fill_form", {"fields": [{"name": "x", "type": "textbox", "ref": "e1"}]}, "fields/0"),
        ("browser_close", {"force": True}, "'force' was unexpected"),
    ],
)
def test_validation_errors_say_where(name: str, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match="Invalid arguments") as caught:
        validate_arguments(TOOLS_BY_NAME[name], arguments)

    assert message in str(caught.value)
