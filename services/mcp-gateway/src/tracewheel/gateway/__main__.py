"""Entrypoint: `python -m tracewheel.gateway` (gRPC on 50052, MCP streamable HTTP on 8100 at /mcp)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_server import HttpServer
from tracewheel.core.metrics import instrument_asgi
from tracewheel.core.service import service_main
from tracewheel.gateway.aggregate import Aggregator, load_server_specs
from tracewheel.gateway.config import GatewaySettings
from tracewheel.gateway.mcp_http import McpHttpEndpoint
from tracewheel.gateway.router import Gateway
from tracewheel.gateway.server import SERVICE_NAME, GatewayServicer
from tracewheel.gateway.session import SessionManager
from tracewheel.v1 import gateway_pb2_grpc


async def setup(settings: GatewaySettings, server: GrpcServer) -> Callable[[], Awaitable[None]]:
    """Starts chromium, the external MCP servers and /mcp; registers the servicer; returns the cleanup."""
    specs = load_server_specs(settings.mcp_servers_file) if settings.mcp_servers_file else []
    manager = SessionManager(settings.browser_config())
    aggregator = Aggregator(specs, timeout_s=settings.external_call_timeout_s)
    await manager.start()
    try:
        await aggregator.start()
    except BaseException:
        await manager.shutdown()
        raise
    gateway = Gateway(manager, aggregator)
    hosts, origins = settings.mcp_hosts(settings.http_port)
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    endpoint = McpHttpEndpoint(
        gateway, allowed_hosts=hosts, allowed_origins=origins, auth_token=token, idle_timeout_s=settings.idle_timeout_s
    )
    await endpoint.start()
    app = instrument_asgi(endpoint, "gateway", frozenset({"/mcp"}), token)
    http = HttpServer(app, settings.http_host, settings.http_port)
    await http.start()
    gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayServicer(gateway), server.server)

    async def cleanup() -> None:
        # Order: stop taking MCP requests, end MCP sessions, close every session (their
        # contexts), then chromium and the external servers' processes.
        await http.stop()
        await endpoint.stop()
        await gateway.close_all()
        await manager.shutdown()
        await aggregator.close()

    return cleanup


def main() -> None:
    service_main("gateway", GatewaySettings, [SERVICE_NAME], setup)


if __name__ == "__main__":
    main()
