"""The `mcpServers` file: which external MCP servers the gateway serves, and how to reach them.

`{"mcpServers": {name: {"command": ..., "args": [...], "env": {...}} | {"url": ..., "type": "http" | "sse",
"headers": {...}}}}`. Header and env values may name environment variables of the gateway,
`${NAME}`, so the file holds no secret; they are read when the file is loaded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracewheel.core.errors import ConfigError

SEPARATOR = "__"
_SERVER_NAME = re.compile(r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Transport = Literal["stdio", "http", "sse"]
_TRANSPORTS: dict[str, Transport] = {
    "stdio": "stdio", "http": "http", "streamable-http": "http", "streamable_http": "http",
    "streamableHttp": "http", "sse": "sse",
}  # fmt: skip


@dataclass(frozen=True)
class ServerSpec:
    """One external MCP server: a command to run (stdio) or a URL (streamable HTTP or SSE).

    `transport` None means the default for what is given: stdio for a command, http for a URL.
    `headers` go with every HTTP request (secrets included, so they are left out of repr).
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    transport: Transport | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> Transport:
        """How the gateway talks to it."""
        return self.transport or ("http" if self.url is not None else "stdio")


def _expanded(values: Any, where: str, environ: Mapping[str, str]) -> dict[str, str]:
    """An object of strings with `${NAME}` replaced by the environment's NAME."""
    if not (isinstance(values, dict) and all(isinstance(v, str) for v in values.values())):
        raise ConfigError(f"{where}: expected an object of strings")

    def value(key: str, text: str) -> str:
        def variable(match: re.Match[str]) -> str:
            if match.group(1) not in environ:
                raise ConfigError(f"{where}.{key}: environment variable {match.group(1)} is not set")
            return environ[match.group(1)]

        return _VARIABLE.sub(variable, text)

    return {key: value(key, text) for key, text in values.items()}


def _transport(entry: dict[str, Any], where: str) -> Transport | None:
    given = entry.get("type", entry.get("transport"))
    if given is None:
        return None
    kind = _TRANSPORTS.get(str(given))
    if kind is None or (kind == "stdio") != ("command" in entry):
        allowed = "'stdio'" if "command" in entry else "'http' (streamable HTTP) or 'sse'"
        raise ConfigError(f"{where}.type: {given!r} does not fit; use {allowed}")
    return kind


def parse_server_specs(data: Any, environ: Mapping[str, str] | None = None) -> list[ServerSpec]:
    """The servers of an `{"mcpServers": {...}}` document; `${NAME}` in headers and env read `environ`
    (default: the process environment).

    Raises:
        ConfigError: the document does not have that shape, or names an unset variable; the message says where.
    """
    environ = os.environ if environ is None else environ
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError('MCP servers file: expected {"mcpServers": {name: {...}}}')
    specs = []
    for name, entry in servers.items():
        where = f"MCP servers file: mcpServers.{name}"
        if not _SERVER_NAME.match(name):
            raise ConfigError(f"{where}: a server name is letters, digits, '-' and single '_'")
        if not isinstance(entry, dict) or ("command" in entry) == ("url" in entry):
            raise ConfigError(f"{where}: give either 'command' (with optional 'args', 'env') or 'url'")
        args = entry.get("args", [])
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            raise ConfigError(f"{where}.args: expected a list of strings")
        env = _expanded(entry.get("env", {}), f"{where}.env", environ)
        headers = _expanded(entry.get("headers", {}), f"{where}.headers", environ)
        url = entry.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ConfigError(f"{where}.url: expected an http:// or https:// URL, got {url!r}")
        if headers and url is None:
            raise ConfigError(f"{where}.headers: only a 'url' server sends headers")
        transport = _transport(entry, where)
        specs.append(ServerSpec(name, entry.get("command"), tuple(args), env, url, transport, headers))
    return specs


def load_server_specs(path: Path, environ: Mapping[str, str] | None = None) -> list[ServerSpec]:
    """The servers listed in the JSON file at `path`.

    Raises:
        ConfigError: the file is missing, not JSON, not in the `mcpServers` shape, or names an unset variable.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read MCP servers file {path}: {exc}") from exc
    return parse_server_specs(data, environ)
