"""What a browser tool is: a definition (name, schema, flags) and an async handler.

Tool names, titles, descriptions and input schemas are copied from @playwright/mcp 0.0.70
(the `tools/list` answer of `playwright-mcp --caps=vision`), the last release whose element
arguments are called `ref`; 0.0.71 renamed them `target`. Matching it means a trace recorded
here replays against `npx @playwright/mcp@0.0.70` and a model trained on our traces calls that
server correctly. tests/browser/playwright_mcp_0.0.70_core_tools.json holds the copy the
tests compare against; change both together when the pin moves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracewheel.gateway.results import Part

if TYPE_CHECKING:
    from tracewheel.gateway.browser.context import ToolContext

PLAYWRIGHT_MCP_VERSION = "0.0.70"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Capabilities as @playwright/mcp names them; a session may be opened with a subset.
CAPABILITIES = ("core", "core-navigation", "core-input", "core-tabs")

Handler = Callable[["ToolContext", dict[str, Any]], Awaitable[list[Part]]]


class ToolError(Exception):
    """A failure the model can act on; its message is shown to the model as the result."""


class StaleRefError(ToolError):
    """An element ref that is not in the current page snapshot."""


class PolicyBlockedError(ToolError):
    """The URL policy refused a navigation."""


@dataclass(frozen=True)
class ToolDefinition:
    """One browser tool.

    Attributes:
        name: the MCP tool name (`browser_click`).
        title: a short human title.
        description: what the model reads.
        input_schema: JSON Schema (2020-12) of the arguments object.
        capability: the group a session may enable or leave out (`core`, `core-tabs`…).
        read_only: True when the tool does not change the page (snapshot, screenshot, wait).
        handler: runs the tool in a session's ToolContext and returns result parts.
    """

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    capability: str
    read_only: bool
    handler: Handler

    @property
    def destructive(self) -> bool:
        """MCP's destructiveHint: whatever is not read-only may change the page."""
        return not self.read_only

    def annotations(self) -> dict[str, Any]:
        """MCP tool annotations, as @playwright/mcp sends them."""
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "openWorldHint": True,
        }


def object_schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An arguments schema in @playwright/mcp's shape (closed object, 2020-12 dialect)."""
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


ELEMENT_DESCRIPTION = {
    "description": "Human-readable element description used to obtain permission to interact with the element",
    "type": "string",
}
REF = {"type": "string", "description": "Exact target element reference from the page snapshot"}
