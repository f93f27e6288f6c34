"""Tool definitions (ours or an external MCP server's) as OpenAI function tools.

What OpenAI-compatible servers (OpenAI, vLLM's guided decoding) accept, and what we do:
- name: at most 64 characters of [a-zA-Z0-9_-]. Other characters become `_`; a name too
  long, or one that collides after cleaning, is cut and given `_` + 8 hex digits of a hash of
  the original name, so the same tool always gets the same name (traces stay comparable).
  Names that are already valid are never changed. `OpenAITools.original_name` maps back.
- description: at most 1024 characters; longer ones are cut and end with `…`.
- parameters: must be an object schema. An object schema without `type` gets it; any other
  root (a string, an array…) is wrapped as `{"type": "object", "properties": {"value": <schema>},
  "required": ["value"]}` and `OpenAITools.arguments_for` unwraps the call's arguments.
  `$schema` is dropped.
- `format`: only the formats OpenAI's structured outputs document are kept (date-time, time,
  date, duration, email, hostname, ipv4, ipv6, uuid); others (uri, regex…) are dropped and
  noted in the property's description, so the model still learns them.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MAX_NAME = 64
MAX_DESCRIPTION = 1024
SUPPORTED_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
WRAPPED_KEY = "value"
_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_SINGLE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")


class ToolSpec(Protocol):
    """What a tool needs to become an OpenAI tool: our ToolDefinition and mcp's Tool both fit."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str | None: ...

    @property
    def input_schema(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class OpenAITools:
    """OpenAI tools and the way back from their names and arguments to the original tools."""

    tools: list[dict[str, Any]]
    _names: dict[str, str]
    _wrapped: frozenset[str]

    def original_name(self, openai_name: str) -> str:
        """The name of the tool an OpenAI tool call names.

        Raises:
            KeyError: no tool has that OpenAI name.
        """
        return self._names[openai_name]

    def arguments_for(self, openai_name: str, arguments: Any) -> Any:
        """The arguments to pass to the original tool (unwrapped if its schema was wrapped)."""
        if openai_name in self._wrapped and isinstance(arguments, Mapping):
            return arguments.get(WRAPPED_KEY)
        return arguments


def sanitize_name(name: str) -> str:
    """`name` restricted to [a-zA-Z0-9_-] and 64 characters (hash-suffixed when cut)."""
    if _VALID_NAME.match(name):
        return name
    cleaned = _INVALID_CHARS.sub("_", name) or "tool"
    if len(cleaned) <= MAX_NAME:
        return cleaned
    return _with_hash(cleaned, name)


def _with_hash(cleaned: str, original: str) -> str:
    digest = hashlib.sha256(original.encode()).hexdigest()[:8]
    return f"{cleaned[: MAX_NAME - 9]}_{digest}"


def clip_description(description: str | None) -> str:
    """`description` cut to 1024 characters."""
    description = description or ""
    if len(description) <= MAX_DESCRIPTION:
        return description
    return description[: MAX_DESCRIPTION - 1] + "…"


def _clean_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    if "format" in schema and schema["format"] not in SUPPORTED_FORMATS:
        dropped = schema.pop("format")
        note = f"(format: {dropped})"
        schema["description"] = f"{schema['description']} {note}" if schema.get("description") else note
    for key in _SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            schema[key] = [_clean_schema(s) for s in schema[key]]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            schema[key] = {name: _clean_schema(s) for name, s in schema[key].items()}
    for key in _SUBSCHEMA_SINGLE:
        if isinstance(schema.get(key), dict):
            schema[key] = _clean_schema(schema[key])
    return schema


def to_parameters(input_schema: Mapping[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The OpenAI `parameters` for an input schema, and whether the root was wrapped."""
    schema = copy.deepcopy(dict(input_schema or {}))
    schema.pop("$schema", None)
    schema = _clean_schema(schema)
    root_type = schema.get("type")
    if root_type == "object" or (root_type is None and not _looks_non_object(schema)):
        schema["type"] = "object"
        schema.setdefault("properties", {})
        return schema, False
    definitions = {key: schema.pop(key) for key in ("$defs", "definitions") if key in schema}
    wrapped = {"type": "object", "properties": {WRAPPED_KEY: schema}, "required": [WRAPPED_KEY], **definitions}
    return wrapped, True


def _looks_non_object(schema: Mapping[str, Any]) -> bool:
    return any(key in schema for key in ("items", "enum", "const", "anyOf", "oneOf", "prefixItems"))


def to_openai_tools(specs: Iterable[ToolSpec]) -> OpenAITools:
    """OpenAI function tools for `specs`, with unique valid names.

    Raises:
        ValueError: two tools have the same original name.
    """
    specs = list(specs)
    originals = [spec.name for spec in specs]
    if len(set(originals)) != len(originals):
        duplicates = sorted({n for n in originals if originals.count(n) > 1})
        raise ValueError(f"tool names must be unique, these repeat: {duplicates}")
    # Valid names keep theirs; the rest are cleaned in sorted order, so the result is the same
    # whatever order the tools come in.
    taken = {n for n in originals if _VALID_NAME.match(n)}
    names = {n: n for n in taken}
    for original in sorted(set(originals) - taken):
        candidate = sanitize_name(original)
        if candidate in taken:
            candidate = _with_hash(_INVALID_CHARS.sub("_", original), original)
        taken.add(candidate)
        names[original] = candidate
    tools, wrapped = [], set()
    for spec in specs:
        parameters, was_wrapped = to_parameters(spec.input_schema)
        if was_wrapped:
            wrapped.add(names[spec.name])
        function: dict[str, Any] = {"name": names[spec.name], "parameters": parameters}
        if spec.description:
            function["description"] = clip_description(spec.description)
        tools.append({"type": "function", "function": function})
    return OpenAITools(tools, {v: k for k, v in names.items()}, frozenset(wrapped))
