"""An HTTP forward proxy that applies the URL policy to every connection the browser opens.

Why a proxy as well as `context.route`: Playwright's route handler sees only the first request
of a redirect chain (microsoft/playwright#3993, "as designed"), so `/go -> 302 ->
http://169.254.169.254/` would get through. Chromium sends every hop of every chain — and
WebSockets, and service-worker fetches — to the proxy, which resolves the host itself, judges
the addresses and connects to exactly the addresses it judged, so a DNS answer that changes
between the check and the connection (rebinding) gains nothing.

Plain http requests arrive in absolute form (`GET http://host/path`); they are forwarded one
per connection (`Connection: close` both ways, so a client never reuses a connection for
another host). https and ws(s) arrive as `CONNECT host:port` and are tunnelled unread.
A refused plain request gets a 403 page whose `X-Tracewheel-Blocked` header holds the reason;
a refused CONNECT gets a 403, which Chromium reports as `net::ERR_TUNNEL_CONNECTION_FAILED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracewheel.gateway.policy import (
    AsyncResolver,
    Decision,
    Target,
    UrlPolicy,
    async_system_resolver,
    check_target_async,
    check_url_async,
)

logger = logging.getLogger(__name__)

BLOCKED_HEADER = "X-Tracewheel-Blocked"
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"}
_MAX_HEAD = 64 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class EgressBlock:
    """One connection the proxy refused."""

    host: str
    port: int
    #: The full URL for plain http requests; None for CONNECT, which carries only host:port.
    url: str | None
    reason: str


class EgressProxy:
    """A policy-enforcing forward proxy on 127.0.0.1, one per browser context.

    Args:
        policy: what may be reached.
        on_blocked: called (synchronously, on the loop) for every refused connection.
        resolve: host name resolver; the system resolver by default.
        connect_timeout: seconds to wait for an upstream TCP connection.
    """

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        on_blocked: Callable[[EgressBlock], None] | None = None,
        resolve: AsyncResolver = async_system_resolver,
        connect_timeout: float = 10.0,
    ) -> None:
        self._policy = policy
        self._on_blocked = on_blocked
        self._resolve = resolve
        self._connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, for the browser's proxy setting.

        Raises:
            RuntimeError: the proxy is not started.
        """
        if self._server is None:
            raise RuntimeError("EgressProxy.start() was not called")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        """Listens on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_HEAD)

    async def close(self) -> None:
        """Stops listening and drops every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Closing the sockets ends every handler's reads; cancelling the handlers instead makes
        # asyncio's stream callback log their CancelledError.
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            _, stuck = await asyncio.wait(list(self._handlers), timeout=5)
            for task in stuck:
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, version, headers = _parse_head(head)
            if method == b"CONNECT":
                await self._tunnel(reader, writer, target.decode("latin-1"))
            else:
                await self._forward(reader, writer, method, target.decode("latin-1"), version, headers)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            await _close(writer)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str) -> None:
        host, _, port_text = authority.rpartition(":")
        host = host.strip("[]")
        target = Target("https", host.lower(), int(port_text))
        decision = await check_target_async(target, self._policy, self._resolve)
        if not decision.allowed:
            self._blocked(EgressBlock(target.host, target.port, None, decision.reason))
            await _respond(writer, 403, "Forbidden", decision.reason, authority)
            return
        upstream = await self._open(target, decision)
        if upstream is None:
            await _respond(writer, 502, "Bad Gateway", None, authority)
            return
        up_reader, up_writer = upstream
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            await _close(up_writer)

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: bytes,
        url: str,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            await _respond(writer, 400, "Bad Request", None, url)
            return
        decision = await check_url_async(url, self._policy, self._resolve)
        if not decision.allowed:
            self._blocked(EgressBlock(parts.hostname, parts.port or 80, url, decision.reason))
            await _respond(writer, 403, "Forbidden", decision.reason, url)
            return
        upstream = await self._open(Target("http", parts.hostname, parts.port or 80), decision)
        if upstream is None:
            await _respond(writer, 502, "Bad Gateway", None, url)
            return
        up_reader, up_writer = upstream
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        up_writer.write(_serialize_head(method + b" " + path.encode("latin-1") + b" " + version, headers))
        body = asyncio.ensure_future(_copy(reader, up_writer))
        try:
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            status_line, _, _, response_headers = _split_head(response_head)
            writer.write(_serialize_head(status_line, response_headers))
            await _copy(up_reader, writer)
        finally:
            body.cancel()
            await asyncio.gather(body, return_exceptions=True)
            self._writers.discard(up_writer)
            await _close(up_writer)

    async def _open(
        self, target: Target, decision: Decision
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        # Connect to the addresses that were judged; an allow-listed host was not resolved.
        for address in decision.addresses or (target.host,):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(address, target.port), self._connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                logger.info("egress: cannot connect to %s:%s (%s)", address, target.port, exc)
                continue
            self._writers.add(writer)
            return reader, writer
        return None

    def _blocked(self, block: EgressBlock) -> None:
        logger.info("egress blocked %s:%s: %s", block.host, block.port, block.reason)
        if self._on_blocked is not None:
            self._on_blocked(block)


def _split_head(head: bytes) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    first = lines[0]
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("malformed header line")
        if name.strip().lower() not in _HOP_BY_HOP and name.strip().lower() != BLOCKED_HEADER.lower().encode():
            headers.append((name.strip(), value.strip()))
    words = first.split(b" ", 2)
    return first, words[0], words[1] if len(words) > 1 else b"", headers


def _parse_head(head: bytes) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    first, method, target, headers = _split_head(head)
    words = first.split(b" ")
    if len(words) != 3:
        raise ValueError("malformed request line")
    return method, target, words[2], headers


def _serialize_head(first_line: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [first_line, *(name + b": " + value for name, value in headers), b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


async def _respond(writer: asyncio.StreamWriter, status: int, phrase: str, reason: str | None, target: str) -> None:
    text = f"{target}: {reason}" if reason else f"{target}: the gateway could not reach it"
    title = "Blocked by the gateway's URL policy" if reason else phrase
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{html.escape(text)}</p></body></html>"
    data = body.encode()
    head = [f"HTTP/1.1 {status} {phrase}", "Content-Type: text/html; charset=utf-8", f"Content-Length: {len(data)}"]
    if reason:
        head.append(f"{BLOCKED_HEADER}: {reason.encode('ascii', 'replace').decode()}")
    writer.write(("\r\n".join([*head, "Connection: close", "", ""])).encode("latin-1") + data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
