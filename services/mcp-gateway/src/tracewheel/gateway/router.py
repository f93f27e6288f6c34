"""One front for both transports (gRPC and MCP over HTTP): sessions over built-in and external tools.

A gateway session is a browser session (its own context, cookies and tabs) plus the external
tools it was opened with. Built-in tools run in the session's browser context; external tools
run on their server, which all sessions share (an external server has no notion of our
sessions). Calls name a tool by its OpenAI name (gRPC: what `list_openai_tools` gave the
model) or by its original name (MCP); both resolve to the same tool.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracewheel.core.errors import InvalidArgument
from tracewheel.gateway.aggregate import Aggregator, ExternalTool
from tracewheel.gateway.browser.registry import TOOLS_BY_NAME
from tracewheel.gateway.openai_tools import OpenAITools, ToolSpec, to_openai_tools
from tracewheel.gateway.results import ResultRenderer, ToolResult, result_from_mcp
from tracewheel.gateway.session import BrowserSession, SessionManager, SessionNotFound

logger = logging.getLogger(__name__)

_TRUNCATION_MARK = re.compile(r"\n\[\.\.\. truncated \d+ characters \.\.\.\]\Z")


def was_truncated(result: ToolResult) -> bool:
    """Whether the renderer cut the result's text."""
    return bool(_TRUNCATION_MARK.search(result.text))


@dataclass
class GatewaySession:
    """A browser session and the external tools it may call."""

    browser: BrowserSession
    external: dict[str, ExternalTool]
    renderer: ResultRenderer
    openai: OpenAITools

    @property
    def id(self) -> str:
        return self.browser.id

    def specs(self) -> list[ToolSpec]:
        """The session's tools: built-in first, then external."""
        return [*self.browser.list_tools(), *self.external.values()]


@dataclass(frozen=True)
class TimedResult:
    """A tool result and how long the call took."""

    result: ToolResult
    seconds: float

    @property
    def truncated(self) -> bool:
        return was_truncated(self.result)


class Gateway:
    """Opens sessions over the built-in browser tools and the aggregated external ones.

    Args:
        manager: the browser sessions (started by the caller).
        aggregator: the external MCP servers (started by the caller), or None.
    """

    def __init__(self, manager: SessionManager, aggregator: Aggregator | None = None) -> None:
        self.manager = manager
        self.aggregator = aggregator or Aggregator([])
        self._sessions: dict[str, GatewaySession] = {}

    def tool_specs(self) -> list[ToolSpec]:
        """Every tool the gateway offers (built-in, then external)."""
        return [*TOOLS_BY_NAME.values(), *self.aggregator.tools()]

    async def open(self, tool_names: Iterable[str] = (), result_char_limit: int = 0) -> GatewaySession:
        """A new session with the named tools (none named: all of them).

        Raises:
            InvalidArgument: unknown tool names (all are named) or a negative limit.
            SessionLimitReached: every session slot is taken.
            BrowserUnavailable: chromium is missing or does not start.
        """
        names = list(dict.fromkeys(tool_names))
        if result_char_limit < 0:
            raise InvalidArgument("result_char_limit must be >= 0 (0: the gateway's default)")
        external = {t.name: t for t in self.aggregator.tools()}
        unknown = [n for n in names if n not in TOOLS_BY_NAME and n not in external]
        if unknown:
            known = sorted([*TOOLS_BY_NAME, *external])
            raise InvalidArgument(f"unknown tools {unknown}; this gateway offers: {known}")
        if names:
            external = {n: external[n] for n in names if n in external}
        config = self.manager.config
        renderer = ResultRenderer(config.attachments_dir, result_char_limit or config.max_result_chars)
        builtin = [n for n in names if n in TOOLS_BY_NAME] if names else None
        browser = await self.manager.open(tools=builtin, renderer=renderer)
        session = GatewaySession(browser, external, renderer, to_openai_tools([]))
        session.openai = to_openai_tools(session.specs())
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> GatewaySession:
        """The open session `session_id`.

        Raises:
            SessionNotFound: never opened, closed, or reaped (idle or its browser crashed).
        """
        try:
            self.manager.get(session_id)
        except SessionNotFound:
            self._sessions.pop(session_id, None)
            raise
        return self._sessions[session_id]

    def list_openai_tools(self, session_id: str) -> list[dict[str, Any]]:
        """The session's tools as OpenAI function tools.

        Raises:
            SessionNotFound: there is no such session.
        """
        return self.get(session_id).openai.tools

    async def call_json(self, session_id: str, name: str, arguments_json: str) -> TimedResult:
        """Calls a tool with arguments as the model wrote them (a JSON object; empty means `{}`).

        Arguments that are not a JSON object come back as an error result the model can fix.

        Raises:
            SessionNotFound: there is no such session.
        """
        session = self.get(session_id)
        started = time.perf_counter()
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except ValueError as exc:
            message = f"The arguments of {name} are not valid JSON ({exc}). Send a JSON object."
            return TimedResult(session.renderer.error(message), time.perf_counter() - started)
        if not isinstance(arguments, dict):
            message = f"The arguments of {name} must be a JSON object, got {type(arguments).__name__}."
            return TimedResult(session.renderer.error(message), time.perf_counter() - started)
        return await self.call(session_id, name, arguments)

    async def call(self, session_id: str, name: str, arguments: dict[str, Any]) -> TimedResult:
        """Calls a tool by its OpenAI or original name.

        An external server that is down or fails answers with an `is_error` result (aggregate.py).

        Raises:
            SessionNotFound: there is no such session.
        """
        session = self.get(session_id)
        started = time.perf_counter()
        try:
            original = session.openai.original_name(name)
            arguments = session.openai.arguments_for(name, arguments)
        except KeyError:
            original = name
        external = session.external.get(original)
        if external is not None:
            raw = await self.aggregator.call_tool(external, arguments)
            result = result_from_mcp(raw, session.renderer, namespace=session.id)
        elif original in session.browser.tools:
            result = await session.browser.call_tool(original, arguments)
        else:
            known = ", ".join(t["function"]["name"] for t in session.openai.tools)
            result = session.renderer.error(f"Unknown tool {name!r}. The tools of this session are: {known}.")
        return TimedResult(result, time.perf_counter() - started)

    async def close(self, session_id: str) -> None:
        """Closes a session.

        Raises:
            SessionNotFound: there is no such session.
        """
        self._sessions.pop(session_id, None)
        await self.manager.close(session_id)

    async def close_all(self) -> None:
        """Closes every session this gateway opened."""
        for session_id in list(self._sessions):
            with contextlib.suppress(SessionNotFound):
                await self.close(session_id)
