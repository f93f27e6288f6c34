"""The gRPC Gateway service with a real server, a grpc.aio client and chromium."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.server import SERVICE_NAME, GatewayServicer
from tracewheel.gateway.session import SessionManager
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def stub(manager: SessionManager) -> AsyncIterator[gateway_pb2_grpc.GatewayStub]:
    gateway = Gateway(manager)
    server = GrpcServer([SERVICE_NAME])
    gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield gateway_pb2_grpc.GatewayStub(channel)
    await server.stop(0.5)
    await gateway.close_all()


async def _open(stub: gateway_pb2_grpc.GatewayStub, *names: str, limit: int = 0) -> str:
    reply = await stub.OpenSession(gateway_pb2.OpenSessionRequest(tool_names=names, result_char_limit=limit))
    return reply.session_id


async def _call(stub: gateway_pb2_grpc.GatewayStub, session_id: str, name: str, args: Any) -> Any:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return await stub.CallTool(gateway_pb2.CallToolRequest(session_id=session_id, name=name, arguments_json=arguments))


async def test_subset_listed_as_openai_tools(stub: gateway_pb2_grpc.GatewayStub) -> None:
    session_id = await _open(stub, "browser_navigate", "browser_snapshot")
    reply = await stub.ListTools(gateway_pb2.ListToolsRequest(session_id=session_id))
    tools = [json.loads(t) for t in reply.tools_json]

    assert sorted(t["function"]["name"] for t in tools) == ["browser_navigate", "browser_snapshot"]
    for tool in tools:
        assert tool["type"] == "function"
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool["function"]["name"])
        assert tool["function"]["parameters"]["type"] == "object"
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))


async def test_navigate_and_snapshot(stub: gateway_pb2_grpc.GatewayStub, site: Any) -> None:
    session_id = await _open(stub)
    navigated = await _call(stub, session_id, "browser_navigate", {"url": site.url + "/form"})
    snapshot = await _call(stub, session_id, "browser_snapshot", {})
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))

    assert not navigated.is_error, navigated.text
    assert "Page Title: Form" in navigated.text
    assert 'textbox "Name"' in snapshot.text
    assert snapshot.seconds > 0
    assert not snapshot.truncated


async def test_result_char_limit_truncates(stub: gateway_pb2_grpc.GatewayStub, site: Any) -> None:
    session_id = await _open(stub, "browser_navigate", limit=200)
    reply = await _call(stub, session_id, "browser_navigate", {"url": site.url + "/long"})
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))

    assert reply.truncated
    assert "[... truncated" in reply.text


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
async def test_bad_arguments_are_an_error_result(stub: gateway_pb2_grpc.GatewayStub, arguments: str) -> None:
    session_id = await _open(stub, "browser_navigate")
    reply = await _call(stub, session_id, "browser_navigate", arguments)
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))

    assert reply.is_error
    assert reply.text.startswith("### Error")
    assert "JSON" in reply.text


async def test_tool_outside_the_session_is_an_error_result(stub: gateway_pb2_grpc.GatewayStub) -> None:
    session_id = await _open(stub, "browser_navigate")
    reply = await _call(stub, session_id, "browser_click", {"ref": "e1"})
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))

    assert reply.is_error
    assert "Unknown tool 'browser_click'" in reply.text
    assert "browser_navigate" in reply.text


async def test_unknown_tool_names_are_invalid_argument(stub: gateway_pb2_grpc.GatewayStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _open(stub, "browser_navigate", "browser_fly", "nope")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "browser_fly" in caught.value.details() and "nope" in caught.value.details()


async def test_unknown_session_is_not_found(stub: gateway_pb2_grpc.GatewayStub) -> None:
    for call in (
        _call(stub, "missing", "browser_snapshot", {}),
        stub.ListTools(gateway_pb2.ListToolsRequest(session_id="missing")),
        stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id="missing")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_sessions_are_isolated(stub: gateway_pb2_grpc.GatewayStub, site: Any) -> None:
    alice, bob = await _open(stub), await _open(stub)
    await _call(stub, alice, "browser_navigate", {"url": site.url + "/cookie?visitor=alice"})
    await _call(stub, bob, "browser_navigate", {"url": site.url + "/cookie?visitor=bob"})
    alice_sees = await _call(stub, alice, "browser_navigate", {"url": site.url + "/show-cookie"})
    bob_sees = await _call(stub, bob, "browser_navigate", {"url": site.url + "/show-cookie"})
    for session_id in (alice, bob):
        await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))

    assert "Cookie header: visitor=alice" in alice_sees.text
    assert "Cookie header: visitor=bob" in bob_sees.text


async def test_session_cap_is_resource_exhausted(stub: gateway_pb2_grpc.GatewayStub, manager: SessionManager) -> None:
    opened = [await _open(stub) for _ in range(manager.config.max_sessions - len(manager.sessions()))]
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _open(stub)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "browser sessions are in use" in caught.value.details()
    finally:
        for session_id in opened:
            await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))


async def test_closed_session_is_gone(stub: gateway_pb2_grpc.GatewayStub) -> None:
    session_id = await _open(stub)
    await stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session_id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(stub, session_id, "browser_snapshot", {})
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
