"""What the model is offered of the session's tools: which tools, which arguments, which words.

Every tool schema is in every request's prompt and in every training row. The six browser
tools the demo uses cost ~860 SmolLM2 tokens as @playwright/mcp words them; offering only the
arguments the tasks need, without their descriptions, costs ~450 (~515 since `browser_fill_form`,
whose field object is nested, took `browser_select_option`'s place). The gateway still accepts the
full schema: a call with an argument left out of the offer is validated as usual.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tracewheel.core.errors import InvalidArgument

TASK_TOOLS = (
    "browser_navigate",
    "browser_navigate_back",
    "browser_snapshot",
    "browser_click",
    "browser_type",
    "browser_fill_form",
    "browser_tabs",
)
"""The browser tools the task suites need (the default tool subset offered to the model)."""

REFERENCE_TOOL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "browser_navigate": ("url",),
    "browser_snapshot": (),
    "browser_click": ("element", "ref"),
    "browser_type": ("element", "ref", "text", "submit"),
    "browser_fill_form": ("fields",),
    "browser_tabs": ("action", "index"),
}
"""The arguments the task suites' reference solutions use, per tool: the smallest offer
(`tool_arguments`) that still lets a model do every task as the references do."""


def offered_tools(
    tools: Sequence[dict[str, Any]],
    names: Collection[str] | None = None,
    arguments: Mapping[str, Sequence[str]] | None = None,
    argument_descriptions: bool = True,
) -> list[dict[str, Any]]:
    """The session's OpenAI function tools as the model is to see them (copies; inputs untouched).

    Args:
        tools: the session's tools (`{"type": "function", "function": {name, description, parameters}}`).
        names: the tools to offer (None: all).
        arguments: per tool, the arguments to offer; a tool not named keeps all of its own.
        argument_descriptions: keep each argument's `description` (False: names, types, enums only).

    Raises:
        InvalidArgument: `arguments` names a tool not offered, an argument the tool does not have,
            or leaves out an argument the tool requires.
    """
    chosen = [copy.deepcopy(t) for t in tools if names is None or t["function"]["name"] in names]
    arguments = arguments or {}
    offered = {t["function"]["name"] for t in chosen}
    unknown = sorted(set(arguments) - offered)
    if unknown:
        raise InvalidArgument(f"tool_arguments names tools that are not offered: {', '.join(unknown)}")
    for tool in chosen:
        function = tool["function"]
        parameters = function.get("parameters") or {}
        properties: dict[str, Any] = parameters.get("properties") or {}
        if function["name"] in arguments:
            keep = list(arguments[function["name"]])
            missing = [a for a in keep if a not in properties]
            if missing:
                raise InvalidArgument(
                    f"tool_arguments: {function['name']} has no argument {', '.join(map(repr, missing))} "
                    f"(it has {', '.join(properties) or 'none'})"
                )
            required = [a for a in parameters.get("required", []) if a not in keep]
            if required:
                raise InvalidArgument(
                    f"tool_arguments: {function['name']} requires {', '.join(map(repr, required))}; offer it too"
                )
            properties = {name: properties[name] for name in properties if name in keep}
        if not argument_descriptions:
            properties = {name: _without_descriptions(schema) for name, schema in properties.items()}
            parameters.pop("additionalProperties", None)
        if parameters:
            parameters["properties"] = properties
    return chosen


def _without_descriptions(schema: Any) -> Any:
    """A JSON schema without its `description` keywords (property names are kept, whatever they are)."""
    if isinstance(schema, list):
        return [_without_descriptions(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _without_descriptions(sub) for name, sub in value.items()}
        else:
            out[key] = _without_descriptions(value)
    return out
