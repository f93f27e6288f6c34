"""Parser names -> (module, class), keyed by vLLM's CLI names; the names are a public API.

The same names configure this service's transformers backend and vLLM's
`--tool-call-parser` / `--reasoning-parser`, so one setting means the same on both backends.
Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import cast

from tracewheel.core.errors import ConfigError
from tracewheel.inference.parsers.base import ReasoningParser, ToolParser

_PACKAGE = "tracewheel.inference.parsers"

TOOL_PARSERS: dict[str, tuple[str, str]] = {
    "hermes": (f"{_PACKAGE}.tools.hermes", "HermesToolParser"),
}
REASONING_PARSERS: dict[str, tuple[str, str]] = {
    "qwen3": (f"{_PACKAGE}.reasoning.qwen3", "Qwen3ReasoningParser"),
}


class UnknownParserError(ConfigError):
    """A parser name that is not in the table."""


def get_tool_parser(name: str) -> type[ToolParser]:
    """Return the tool parser class registered as `name` (e.g. `hermes`).

    Raises:
        UnknownParserError: No tool parser has that name; the message lists the known ones.
    """
    return cast(type[ToolParser], _load(TOOL_PARSERS, name, kind="tool"))


def get_reasoning_parser(name: str) -> type[ReasoningParser]:
    """Return the reasoning parser class registered as `name` (e.g. `qwen3`).

    Raises:
        UnknownParserError: No reasoning parser has that name; the message lists the known ones.
    """
    return cast(type[ReasoningParser], _load(REASONING_PARSERS, name, kind="reasoning"))


def _load(table: dict[str, tuple[str, str]], name: str, *, kind: str) -> type:
    try:
        module_name, class_name = table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownParserError(f"unknown {kind} parser {name!r}; known {kind} parsers: {known}") from None
    parser: type = getattr(importlib.import_module(module_name), class_name)
    return parser
