"""Tool sessions: what the agent loop calls tools through, in-process or over gRPC.

The loop sees one small interface (`ToolSession`): list the session's tools as OpenAI function
tools, call one with the arguments JSON exactly as the model wrote it, close. Two
implementations: `GatewayClient` (gRPC to the mcp-gateway service, `gateway_client.py`) and
`LocalGateway` here (the gateway's SessionManager in this process: tests and the embedded
single-process path). Unknown tools and bad arguments come back as error results the model
can read; only a session that is gone raises (`SessionLost`), so the loop can reopen it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tracewheel.core.errors import ResourceExhausted, Unavailable

if TYPE_CHECKING:
    from tracewheel.gateway.session import BrowserSession, SessionManager

logger = logging.getLogger(__name__)

T = TypeVar("T")

# retries of a session refused for capacity: 0.25 s, doubling up to 2 s
_FIRST_RETRY_S = 0.25
_LAST_RETRY_S = 2.0


class SessionLost(Unavailable):
    """The tool session is gone (closed, reaped, or its browser crashed); open a new one."""


@dataclass(frozen=True)
class ToolOutput:
    """A tool's answer as the model reads it."""

    text: str
    is_error: bool = False


class ToolSession(Protocol):
    """One isolated set of tools (one browser context) the agent works in."""

    async def list_tools(self) -> list[dict[str, Any]]:
        """The session's tools as OpenAI function tools."""
        ...

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        """Runs a tool; problems the model can fix are error outputs.

        Raises:
            SessionLost: the session is gone.
        """
        ...

    async def reopen(self) -> None:
        """Replaces a lost session by a fresh one with the same tools (its pages are gone).

        Raises:
            Unavailable: no new session could be opened.
        """
        ...

    async def close(self) -> None:
        """Ends the session; safe to call twice."""
        ...


class ToolSessionFactory(Protocol):
    """Opens tool sessions."""

    async def open(self, tool_names: Sequence[str] | None = None, result_char_limit: int = 0) -> ToolSession:
        """A new session offering `tool_names` (all when None or empty).

        Raises:
            InvalidArgument: an unknown tool name.
            ResourceExhausted: every browser session stayed in use for the factory's wait.
            Unavailable: no session could be opened.
        """
        ...


async def open_when_free(open_once: Callable[[], Awaitable[T]], wait_s: float) -> T:
    """`open_once()`, tried again while it raises ResourceExhausted (every browser session of the
    gateway is in use), for up to `wait_s` seconds in all.

    Raises:
        ResourceExhausted: still no free session after `wait_s` (0: at the first refusal).
    """
    waited, delay = 0.0, _FIRST_RETRY_S
    while True:
        try:
            return await open_once()
        except ResourceExhausted as exc:
            if waited + delay > wait_s:
                if waited:
                    raise ResourceExhausted(f"{exc} (waited {waited:.1f} s for a free session)") from exc
                raise
            if not waited:
                logger.warning(
                    "no free browser session (%s); waiting up to %g s. More agents at once than the gateway's "
                    "max_sessions only queue here",
                    exc,
                    wait_s,
                )
        await asyncio.sleep(delay)
        waited, delay = waited + delay, min(delay * 2, _LAST_RETRY_S)


def parse_arguments(arguments_json: str) -> dict[str, Any] | str:
    """The arguments as a dict, or a message the model can read saying why they are not one."""
    try:
        arguments = json.loads(arguments_json or "{}")
    except json.JSONDecodeError as exc:
        return f"### Error\nThe arguments are not valid JSON ({exc.msg} at char {exc.pos}); send a JSON object."
    if not isinstance(arguments, dict):
        return f"### Error\nThe arguments must be a JSON object, got {type(arguments).__name__}."
    return arguments


class LocalToolSession:
    """A gateway BrowserSession in this process (see `LocalGateway`)."""

    def __init__(
        self,
        manager: SessionManager,
        tool_names: Sequence[str] | None,
        result_char_limit: int,
        session_wait_s: float = 0.0,
    ) -> None:
        self._manager = manager
        self._tool_names = list(tool_names) if tool_names else None
        self._limit = result_char_limit
        self._wait_s = session_wait_s
        self._session: BrowserSession | None = None

    async def start(self) -> LocalToolSession:
        self._session = await open_when_free(lambda: self._manager.open(tools=self._tool_names), self._wait_s)
        return self

    @property
    def session_id(self) -> str:
        """The gateway's session id."""
        assert self._session is not None, "start() first"
        return self._session.id

    async def list_tools(self) -> list[dict[str, Any]]:
        from tracewheel.gateway.openai_tools import to_openai_tools

        assert self._session is not None, "start() first"
        return to_openai_tools(self._session.list_tools()).tools

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        from tracewheel.gateway.results import truncate

        session = self._session
        if session is None or session.closed or session.crashed:
            raise SessionLost("the browser session is gone; reopen it")
        arguments = parse_arguments(arguments_json)
        if isinstance(arguments, str):
            return ToolOutput(arguments, is_error=True)
        result = await session.call_tool(name, arguments)
        if session.crashed or session.closed:
            raise SessionLost(f"the browser session ended during {name}: {result.text}")
        return ToolOutput(truncate(result.text, self._limit), result.is_error)

    async def reopen(self) -> None:
        await self.close()
        await self.start()

    async def close(self) -> None:
        from tracewheel.gateway.session import SessionNotFound

        if self._session is None:
            return
        session, self._session = self._session, None
        try:
            await self._manager.close(session.id)
        except SessionNotFound:
            await session.close()


class LocalGateway:
    """A ToolSessionFactory over the gateway's SessionManager in this process.

    The caller owns the manager (`async with SessionManager(BrowserConfig(...))`). While all of
    its `max_sessions` are in use, opening one waits up to `session_wait_s` for a free one.
    """

    def __init__(self, manager: SessionManager, session_wait_s: float = 0.0) -> None:
        self.manager = manager
        self.session_wait_s = session_wait_s

    async def open(self, tool_names: Sequence[str] | None = None, result_char_limit: int = 0) -> LocalToolSession:
        return await LocalToolSession(self.manager, tool_names, result_char_limit, self.session_wait_s).start()
