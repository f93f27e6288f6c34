"""gRPC transport of the gateway (tracewheel.v1.Gateway): translates to `router.Gateway`.

Domain errors (unknown tools -> INVALID_ARGUMENT, unknown session -> NOT_FOUND, session cap ->
UNAVAILABLE) are raised as TracewheelErrors and mapped by the core error interceptor.
"""

from __future__ import annotations

import json

import grpc

from tracewheel.gateway.router import Gateway
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

SERVICE_NAME = "tracewheel.v1.Gateway"


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    """Sessions, OpenAI-shaped tool lists and tool calls over gRPC."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def OpenSession(
        self, request: gateway_pb2.OpenSessionRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.OpenSessionResponse:
        session = await self.gateway.open(request.tool_names, request.result_char_limit)
        return gateway_pb2.OpenSessionResponse(session_id=session.id)

    async def ListTools(
        self, request: gateway_pb2.ListToolsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListToolsResponse:
        tools = self.gateway.list_openai_tools(request.session_id)
        return gateway_pb2.ListToolsResponse(tools_json=[json.dumps(tool) for tool in tools])

    async def CallTool(
        self, request: gateway_pb2.CallToolRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CallToolResponse:
        timed = await self.gateway.call_json(request.session_id, request.name, request.arguments_json)
        result = timed.result
        return gateway_pb2.CallToolResponse(
            text=result.text,
            is_error=result.is_error,
            truncated=timed.truncated,
            attachments=[gateway_pb2.Attachment(mime_type=a.mime_type, path=str(a.path)) for a in result.attachments],
            seconds=timed.seconds,
        )

    async def CloseSession(
        self, request: gateway_pb2.CloseSessionRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CloseSessionResponse:
        await self.gateway.close(request.session_id)
        return gateway_pb2.CloseSessionResponse()
