"""GatewayClient against a stand-in Gateway servicer over a real gRPC channel."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from tracewheel.agent.gateway_client import GatewayClient
from tracewheel.agent.tools import SessionLost
from tracewheel.core.errors import InvalidArgument, ResourceExhausted
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

TOOL = {"type": "function", "function": {"name": "browser_snapshot", "parameters": {"type": "object"}}}


class _Gateway(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, max_sessions: int = 8) -> None:
        self.sessions: dict[str, tuple[list[str], int]] = {}
        self.max_sessions = max_sessions
        self.opened = 0

    async def OpenSession(self, request, context):
        if "bad" in request.tool_names:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown tool bad")
        if len(self.sessions) >= self.max_sessions:  # as the real gateway's SessionLimitReached
            message = f"all {self.max_sessions} browser sessions are in use"
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.opened += 1
        session_id = f"s{self.opened}"
        self.sessions[session_id] = (list(request.tool_names), request.result_char_limit)
        return gateway_pb2.OpenSessionResponse(session_id=session_id)

    async def ListTools(self, request, context):
        return gateway_pb2.ListToolsResponse(tools_json=[json.dumps(TOOL)])

    async def CallTool(self, request, context):
        if request.session_id not in self.sessions:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such session")
        return gateway_pb2.CallToolResponse(text=f"{request.name} {request.arguments_json}", is_error=False)

    async def CloseSession(self, request, context):
        self.sessions.pop(request.session_id, None)
        return gateway_pb2.CloseSessionResponse()


@contextlib.asynccontextmanager
async def _serving(fake: _Gateway) -> AsyncIterator[str]:
    """`fake` served over a real gRPC server; yields its address."""
    server = GrpcServer(["tracewheel.v1.Gateway"])
    port = server.bind("127.0.0.1", 0)
    gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server.server)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_sessions_calls_and_a_lost_session() -> None:
    fake = _Gateway()
    async with _serving(fake) as address:
        client = GatewayClient(address)
        try:
            session = await client.open(["browser_snapshot"], 500)
            assert fake.sessions[session.session_id] == (["browser_snapshot"], 500)
            assert await session.list_tools() == [TOOL]
            output = await session.call_tool("browser_snapshot", "{}")
            assert output.text == "browser_snapshot {}" and not output.is_error
            fake.sessions.clear()  # reaped by the gateway
            with pytest.raises(SessionLost):
                await session.call_tool("browser_snapshot", "{}")
            await session.reopen()
            assert (await session.call_tool("browser_snapshot", "{}")).text == "browser_snapshot {}"
            await session.close()
            assert fake.sessions == {}
            with pytest.raises(InvalidArgument):
                await client.open(["bad"])
        finally:
            await client.close()


@pytest.fixture
async def one_session_gateway() -> AsyncIterator[tuple[_Gateway, str]]:
    fake = _Gateway(max_sessions=1)
    async with _serving(fake) as address:
        yield fake, address


async def test_a_session_refused_for_capacity_waits_for_a_free_one(one_session_gateway: tuple[_Gateway, str]) -> None:
    fake, address = one_session_gateway
    client = GatewayClient(address, session_wait_s=30)
    try:
        first = await client.open()
        second = asyncio.create_task(client.open())
        await asyncio.sleep(0.6)  # two refused tries
        assert not second.done() and list(fake.sessions) == [first.session_id]
        await first.close()
        session = await asyncio.wait_for(second, 10)
        assert list(fake.sessions) == [session.session_id]
    finally:
        await client.close()


async def test_without_waiting_a_full_gateway_fails_the_open_at_once(one_session_gateway: tuple[_Gateway, str]) -> None:
    _, address = one_session_gateway
    client = GatewayClient(address, session_wait_s=0)
    try:
        await client.open()
        with pytest.raises(ResourceExhausted, match="all 1 browser sessions are in use"):
            await client.open()
    finally:
        await client.close()
