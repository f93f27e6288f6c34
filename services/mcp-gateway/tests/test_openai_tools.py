"""Tool definitions as OpenAI function tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import types as mcp_types

from tracewheel.gateway.browser.registry import ALL_TOOLS
from tracewheel.gateway.openai_tools import (
    MAX_DESCRIPTION,
    clip_description,
    sanitize_name,
    to_openai_tools,
    to_parameters,
)


@dataclass
class Spec:
    name: str
    description: str | None = "does things"
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


def test_browser_tools_convert_unchanged_except_schema_dialect() -> None:
    converted = to_openai_tools(ALL_TOOLS)

    click = next(t["function"] for t in converted.tools if t["function"]["name"] == "browser_click")
    assert click["description"] == "Perform click on a web page"
    assert "$schema" not in click["parameters"]
    assert click["parameters"]["required"] == ["ref"]
    assert {t["type"] for t in converted.tools} == {"function"}


def test_mcp_tools_convert() -> None:
    tool = mcp_types.Tool(name="fs.read", description="Read a file", input_schema={"type": "object", "properties": {}})

    converted = to_openai_tools([tool])

    assert converted.tools[0]["function"]["name"] == "fs_read"
    assert converted.original_name("fs_read") == "fs.read"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("browser_click", "browser_click"), ("server/tool name!", "server_tool_name_"), ("ok-name_1", "ok-name_1")],
)
def test_sanitize_name(name: str, expected: str) -> None:
    assert sanitize_name(name) == expected


def test_long_names_are_cut_with_a_stable_hash() -> None:
    long_name = "x" * 100

    name = sanitize_name(long_name)

    assert len(name) == 64
    assert name == sanitize_name(long_name)
    assert name != sanitize_name("x" * 99)


def test_names_are_unique_and_order_independent() -> None:
    specs = [Spec("a.b"), Spec("a_b"), Spec("a b")]

    forward = to_openai_tools(specs)
    backward = to_openai_tools(list(reversed(specs)))

    names = {forward.original_name(t["function"]["name"]): t["function"]["name"] for t in forward.tools}
    assert names["a_b"] == "a_b"
    assert len(set(names.values())) == 3
    assert all(len(n) <= 64 for n in names.values())
    assert names == {backward.original_name(t["function"]["name"]): t["function"]["name"] for t in backward.tools}


def test_duplicate_original_names_are_refused() -> None:
    with pytest.raises(ValueError, match="repeat"):
        to_openai_tools([Spec("same"), Spec("same")])


def test_descriptions_are_clipped() -> None:
    clipped = clip_description("d" * 2000)

    assert len(clipped) == MAX_DESCRIPTION
    assert clipped.endswith("…")
    assert "description" not in to_openai_tools([Spec("t", description=None)]).tools[0]["function"]


def test_non_object_root_is_wrapped_and_unwrapped() -> None:
    converted = to_openai_tools([Spec("echo", input_schema={"type": "string", "description": "what to echo"})])

    parameters = converted.tools[0]["function"]["parameters"]
    assert parameters == {
        "type": "object",
        "properties": {"value": {"type": "string", "description": "what to echo"}},
        "required": ["value"],
    }
    assert converted.arguments_for("echo", {"value": "hi"}) == "hi"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, {"type": "object", "properties": {}}),
        ({}, {"type": "object", "properties": {}}),
        ({"properties": {"a": {"type": "integer"}}}, {"type": "object", "properties": {"a": {"type": "integer"}}}),
    ],
)
def test_object_roots_are_completed(schema: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert to_parameters(schema) == (expected, False)


def test_array_root_with_defs_keeps_defs_at_the_top() -> None:
    parameters, wrapped = to_parameters(
        {"type": "array", "items": {"$ref": "#/$defs/item"}, "$defs": {"item": {"type": "string"}}}
    )

    assert wrapped
    assert parameters["$defs"] == {"item": {"type": "string"}}
    assert parameters["properties"]["value"] == {"type": "array", "items": {"$ref": "#/$defs/item"}}


def test_unsupported_formats_are_dropped_and_noted() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "link": {"type": "string", "format": "uri", "description": "A page"},
            "tags": {"type": "array", "items": {"type": "string", "format": "regex"}},
            "either": {"anyOf": [{"type": "string", "format": "uri-reference"}, {"type": "null"}]},
        },
    }

    parameters, _ = to_parameters(schema)

    properties = parameters["properties"]
    assert properties["when"] == {"type": "string", "format": "date-time"}
    assert properties["link"] == {"type": "string", "description": "A page (format: uri)"}
    assert properties["tags"]["items"] == {"type": "string", "description": "(format: regex)"}
    assert "format" not in properties["either"]["anyOf"][0]
    assert schema["properties"]["link"]["format"] == "uri"  # the input is not modified
