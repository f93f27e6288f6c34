"""Transport: tool sessions on the mcp-gateway service over gRPC (tracewheel.v1.Gateway)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from tracewheel.agent.tools import SessionLost, ToolOutput, open_when_free
from tracewheel.core.errors import InvalidArgument, ResourceExhausted, Unavailable
from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc


def _domain_error(exc: grpc.aio.AioRpcError, action: str) -> Exception:
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"gateway refused to {action}: {exc.details()}")
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(f"gateway could not {action}: {exc.details()}")
    return Unavailable(f"gateway could not {action} ({exc.code().name}): {exc.details()}")


class GatewaySession:
    """One gateway session; see `tracewheel.agent.tools.ToolSession`."""

    def __init__(self, client: GatewayClient, tool_names: Sequence[str] | None, result_char_limit: int) -> None:
        self._client = client
        self._tool_names = list(tool_names or ())
        self._limit = result_char_limit
        self.session_id = ""

    async def start(self) -> GatewaySession:
        """Opens the session; while every browser session of the gateway is in use, waits for
        one to free up, up to the client's `session_wait_s` (`tools.open_when_free`)."""
        request = gateway_pb2.OpenSessionRequest(tool_names=self._tool_names, result_char_limit=self._limit)

        async def open_once() -> gateway_pb2.OpenSessionResponse:
            try:
                return await self._client.stub.OpenSession(
                    request, timeout=self._client.timeout_s, metadata=self._client.metadata
                )
            except grpc.aio.AioRpcError as exc:
                raise _domain_error(exc, "open a session") from exc

        response = await open_when_free(open_once, self._client.session_wait_s)
        self.session_id = response.session_id
        return self

    async def list_tools(self) -> list[dict[str, Any]]:
        request = gateway_pb2.ListToolsRequest(session_id=self.session_id)
        try:
            response = await self._client.stub.ListTools(
                request, timeout=self._client.timeout_s, metadata=self._client.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise SessionLost(exc.details() or "session not found") from exc
            raise _domain_error(exc, "list tools") from exc
        return [json.loads(tool) for tool in response.tools_json]

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        request = gateway_pb2.CallToolRequest(session_id=self.session_id, name=name, arguments_json=arguments_json)
        try:
            # No deadline here: the agent's time limit cancels the call.
            response = await self._client.stub.CallTool(request, metadata=self._client.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise SessionLost(f"gateway session {self.session_id} lost: {exc.details()}") from exc
            return ToolOutput(f"### Error\n{name} failed in the gateway: {exc.details()}", is_error=True)
        return ToolOutput(response.text, response.is_error)

    async def reopen(self) -> None:
        await self.close()
        await self.start()

    async def close(self) -> None:
        if not self.session_id:
            return
        session_id, self.session_id = self.session_id, ""
        try:
            await self._client.stub.CloseSession(
                gateway_pb2.CloseSessionRequest(session_id=session_id),
                timeout=self._client.timeout_s,
                metadata=self._client.metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise _domain_error(exc, "close a session") from exc


class GatewayClient:
    """A ToolSessionFactory on the gateway at `address` (host:port).

    Args:
        address: the gateway's gRPC address.
        token: bearer token, when the gateway requires one.
        timeout_s: deadline of session open/list/close calls.
        session_wait_s: how long opening a session waits for a free browser session while the
            gateway has none (0: fail at once, as `LocalGateway`; the service passes
            `AgentSettings.gateway_session_wait_s`).
    """

    def __init__(
        self, address: str, *, token: str | None = None, timeout_s: float = 30.0, session_wait_s: float = 0.0
    ) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)
        self.timeout_s = timeout_s
        self.session_wait_s = session_wait_s

    async def open(self, tool_names: Sequence[str] | None = None, result_char_limit: int = 0) -> GatewaySession:
        return await GatewaySession(self, tool_names, result_char_limit).start()

    async def close(self) -> None:
        await self.channel.close()
