"""GatewayClient against a stand-in Gateway servicer over a real gRPC channel."""

import json

import grpc
import pytest

from tracewheel.agent.gateway_client import GatewayClient
from tracewheel.agent.tools import SessionLost
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

TOOL = {"type": "function", "function": {"name": "browser_snapshot", "parameters": {"type": "object"}}}


class _Gateway(gateway_pb2_grpc.GatewayServicer):
    def __init__(self) -> None:
        self.sessions: dict[str, tuple[list[str], int]] = {}

    async def OpenSession(self, request, context):
        if "bad" in request.tool_names:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown tool bad")
        session_id = f"s{len(self.sessions) + 1}"
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


async def test_sessions_calls_and_a_lost_session() -> None:
    fake = _Gateway()
    server = GrpcServer(["tracewheel.v1.Gateway"])
    port = server.bind("127.0.0.1", 0)
    gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server.server)
    await server.start()
    client = GatewayClient(f"127.0.0.1:{port}")
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
        await server.stop(0)
