"""A team's MCP server, written with the official SDK (`MCPServer`), for the gateway's tests.

Run: `python sdk_mcp_server.py PORT http|sse [TOKEN]`. Streamable HTTP is served at /mcp, the
older HTTP+SSE transport at /sse. With TOKEN, every request must carry
`Authorization: Bearer TOKEN` (401 otherwise), as a server behind a team's gateway would.

Tools: `add(a, b)`, `shout(text)`, and `fail(reason)`, which raises: the SDK answers it as an
`is_error` result.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("team-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ValueError(reason)


def bearer_only(app: Any, token: str) -> Any:
    """The app, answering 401 to a request without `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
            return
        await app(scope, receive, send)

    return guarded


def main(argv: list[str]) -> None:
    port, transport = int(argv[1]), argv[2]
    app = server.streamable_http_app() if transport == "http" else server.sse_app()
    if len(argv) > 3:
        app = bearer_only(app, argv[3])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv)
