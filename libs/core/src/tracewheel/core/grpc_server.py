"""gRPC server helper: health, reflection, auth, error mapping, graceful shutdown.

Every service builds its server with `build_server`, adds its servicers, then runs
`serve_until_signal`. Servicers raise `TracewheelError`s; the error interceptor turns them
into status codes with the error's message, so clients see what was wrong.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tracewheel.core.errors import TracewheelError

log = logging.getLogger(__name__)

# Health and reflection stay open so probes and grpcurl work without the token.
_OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _status_code(error: TracewheelError) -> grpc.StatusCode:
    return grpc.StatusCode[error.grpc_code_name]


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], wrap_unary: Callable[..., Any], wrap_stream: Callable[..., Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    kinds = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for kind, factory in kinds.items():
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            wrapped = wrap_stream(behaviour) if kind.endswith("_stream") else wrap_unary(behaviour)
            return factory(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps TracewheelError to its status code; logs anything else as an internal error."""

    async def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method

        def wrap_unary(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await behaviour(request, context)
                except TracewheelError as exc:
                    await context.abort(_status_code(exc), str(exc))
                except grpc.aio.AbortError:  # the servicer aborted with its own status
                    raise
                except Exception:
                    log.exception("unhandled error in %s", method)
                    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")

            return run

        def wrap_stream(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    async for item in behaviour(request, context):
                        yield item
                except TracewheelError as exc:
                    await context.abort(_status_code(exc), str(exc))

            return run

        return _wrap_handler(handler, wrap_unary, wrap_stream)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <token>` on every method but health and reflection."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(_OPEN_METHOD_PREFIXES):
            return await continuation(details)
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(sent).encode(), self._expected):
            return await continuation(details)

        async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (authorization metadata)"
            )

        return grpc.unary_unary_rpc_method_handler(deny)


def message_size_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel or server options letting messages up to `max_message_bytes` through both ways."""
    return [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]


class GrpcServer:
    """A grpc.aio server with health and reflection registered for `service_names`."""

    def __init__(
        self, service_names: Iterable[str], *, auth_token: str | None = None, max_message_bytes: int | None = None
    ) -> None:
        """`max_message_bytes` bounds a request or reply (None: gRPC's 4 MB); services set it to carry
        the largest trace (core.trace_size.wire_limit)."""
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if auth_token:
            interceptors.append(BearerTokenInterceptor(auth_token))
        interceptors.append(ErrorMappingInterceptor())
        options = message_size_options(max_message_bytes) if max_message_bytes else []
        self.server = grpc.aio.server(interceptors=interceptors, options=options)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    def bind(self, host: str, port: int) -> int:
        """Binds the address; returns the port (useful with port 0)."""
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {host}:{port}")
        return self.port

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC server listening on port %d", self.port)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Reports NOT_SERVING, lets in-flight calls finish for `grace_s`, then stops."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def serve_until_signal(server: GrpcServer, *, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully (server first, then `on_stop`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    if on_stop is not None:
        await on_stop()
