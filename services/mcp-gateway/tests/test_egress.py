"""The egress proxy, spoken to over raw sockets: what it forwards, tunnels and refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tracewheel.gateway.egress import BLOCKED_HEADER, EgressBlock, EgressProxy
from tracewheel.gateway.policy import UrlPolicy


@pytest.fixture
async def proxy(site: Any) -> AsyncIterator[tuple[EgressProxy, list[EgressBlock]]]:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return {"rebind.test": ["93.184.216.34", "127.0.0.1"]}[host]

    blocks: list[EgressBlock] = []
    egress = EgressProxy(UrlPolicy(allow_hosts=(f"127.0.0.1:{site.port}",)), on_blocked=blocks.append, resolve=resolve)
    await egress.start()
    yield egress, blocks
    await egress.close()


async def exchange(proxy: EgressProxy, request: bytes, then: bytes = b"") -> bytes:
    host, port = proxy.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    if then:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(then)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def test_forwards_plain_http_to_allowed_host(proxy: Any, site: Any) -> None:
    egress, blocks = proxy

    response = await exchange(egress, f"GET {site.url}/popup HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n\r\n".encode())

    assert response.startswith(b"HTTP/1.0 200") or response.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in response
    assert b"<title>Popup page</title>" in response
    assert blocks == []


async def test_refuses_plain_http_to_denied_host(proxy: Any, site: Any) -> None:
    egress, blocks = proxy

    response = await exchange(egress, f"GET {site.denied_url}/secret HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert response.startswith(b"HTTP/1.1 403 Forbidden")
    assert f"{BLOCKED_HEADER}: 127.0.0.1 is a loopback address".encode() in response
    assert blocks == [
        EgressBlock(
            "127.0.0.1",
            int(site.denied_url.rsplit(":", 1)[1]),
            f"{site.denied_url}/secret",
            "127.0.0.1 is a loopback address",
        )
    ]
    assert site.denied_hits == []


async def test_refuses_names_that_resolve_to_denied_addresses(proxy: Any) -> None:
    egress, blocks = proxy

    response = await exchange(egress, b"GET http://rebind.test/ HTTP/1.1\r\nHost: rebind.test\r\n\r\n")

    assert response.startswith(b"HTTP/1.1 403")
    assert blocks[0].reason == "rebind.test resolves to 127.0.0.1, a loopback address"


async def test_refuses_connect_to_metadata_service(proxy: Any) -> None:
    egress, blocks = proxy

    response = await exchange(egress, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\nHost: 169.254.169.254:443\r\n\r\n")

    assert response.startswith(b"HTTP/1.1 403")
    assert blocks[0].url is None
    assert (blocks[0].host, blocks[0].port) == ("169.254.169.254", 443)


async def test_tunnels_connect_to_allowed_host(proxy: Any, site: Any) -> None:
    egress, _ = proxy
    authority = f"127.0.0.1:{site.port}"

    response = await exchange(
        egress,
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode(),
        then=f"GET /popup HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode(),
    )

    assert b"<title>Popup page</title>" in response


@pytest.mark.parametrize(
    "request_head", [b"GET /relative HTTP/1.1\r\n\r\n", b"GET http://127.0.0.1:1/ HTTP/1.1\r\n\r\n"]
)
async def test_answers_bad_requests_without_dying(proxy: Any, site: Any, request_head: bytes) -> None:
    egress, _ = proxy

    response = await exchange(egress, request_head)
    still_works = await exchange(egress, f"GET {site.url}/ HTTP/1.1\r\nHost: h\r\n\r\n".encode())

    assert response.split(b"\r\n")[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 403 Forbidden")
    assert b"<title>Home</title>" in still_works


async def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = EgressProxy(UrlPolicy()).url
