"""Every built-in browser tool, in one place, filterable by name or capability."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from tracewheel.core.errors import InvalidArgument
from tracewheel.gateway.browser import common, input, navigate, screenshot, snapshot, tabs, wait
from tracewheel.gateway.browser.base import CAPABILITIES, ToolDefinition, ToolError

ALL_TOOLS: tuple[ToolDefinition, ...] = (
    *navigate.TOOLS,
    *snapshot.TOOLS,
    *input.TOOLS,
    *tabs.TOOLS,
    *wait.TOOLS,
    *screenshot.TOOLS,
    *common.TOOLS,
)
TOOLS_BY_NAME: Mapping[str, ToolDefinition] = {tool.name: tool for tool in ALL_TOOLS}


def select_tools(
    names: Iterable[str] | None = None, capabilities: Iterable[str] | None = None
) -> tuple[ToolDefinition, ...]:
    """The tools named in `names` and/or belonging to `capabilities`; all of them if both are None.

    Raises:
        InvalidArgument: an unknown tool name or capability.
    """
    if names is None and capabilities is None:
        return ALL_TOOLS
    wanted_names = set(names or ())
    wanted_caps = set(capabilities or ())
    unknown_names = sorted(wanted_names - TOOLS_BY_NAME.keys())
    if unknown_names:
        raise InvalidArgument(f"unknown browser tools {unknown_names}; known: {sorted(TOOLS_BY_NAME)}")
    unknown_caps = sorted(wanted_caps - set(CAPABILITIES))
    if unknown_caps:
        raise InvalidArgument(f"unknown capabilities {unknown_caps}; known: {list(CAPABILITIES)}")
    return tuple(t for t in ALL_TOOLS if t.name in wanted_names or t.capability in wanted_caps)


def validate_arguments(tool: ToolDefinition, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments with schema defaults filled in, checked against the tool's input schema.

    Top-level `default`s are applied first, as @playwright/mcp's zod schemas do (its
    browser_take_screenshot lists `type` as required but defaults it).

    Raises:
        ToolError: the arguments do not match the schema; the message says where and how.
    """
    if arguments is not None and not isinstance(arguments, Mapping):
        raise ToolError(f"Arguments of {tool.name} must be a JSON object, got {type(arguments).__name__}.")
    args = dict(arguments or {})
    for key, spec in tool.input_schema.get("properties", {}).items():
        if "default" in spec and key not in args:
            args[key] = spec["default"]
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(tool.input_schema).iter_errors(args))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        properties = tool.input_schema.get("properties", {})
        expected = ", ".join(
            f"{name}{'' if name in tool.input_schema.get('required', ()) else '?'}" for name in properties
        )
        raise ToolError(
            f"Invalid arguments for {tool.name} at {where}: {error.message}. Expected ({expected or 'none'})."
        )
    return args
