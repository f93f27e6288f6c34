"""The common `__main__` of a service: settings, logging, gRPC server, signals.

A service passes its settings class and a `setup` coroutine that registers its servicers
(and starts its event consumers); `setup` may return a coroutine function run at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tracewheel.core.errors import ConfigError, Unavailable
from tracewheel.core.grpc_server import GrpcServer, serve_until_signal
from tracewheel.core.http_server import HttpServer
from tracewheel.core.logging import configure_logging
from tracewheel.core.metrics import MetricsApp
from tracewheel.core.settings import ServiceSettings, load_settings
from tracewheel.core.trace_size import wire_limit

S = TypeVar("S", bound=ServiceSettings)
Cleanup = Callable[[], Awaitable[None]]
Setup = Callable[[S, GrpcServer], Awaitable[Cleanup | None]]

log = logging.getLogger(__name__)


async def _serve(settings: S, service_names: list[str], setup: Setup[S] | None) -> None:
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    # every gRPC message may carry the largest trace the settings allow (one size policy)
    server = GrpcServer(service_names, auth_token=token, max_message_bytes=wire_limit(settings.max_trace_bytes))
    server.bind(settings.grpc_host, settings.grpc_port)
    metrics = None
    if settings.metrics_port:  # services without an HTTP server (agent, trainer) are scraped here
        metrics = HttpServer(MetricsApp(token), settings.grpc_host, settings.metrics_port)
        await metrics.start()
    cleanup = await setup(settings, server) if setup is not None else None

    async def stop() -> None:
        if cleanup is not None:
            await cleanup()
        if metrics is not None:
            await metrics.stop()

    await serve_until_signal(server, on_stop=stop)


def service_main(name: str, settings_cls: type[S], service_names: list[str], setup: Setup[S] | None = None) -> None:
    """Runs a service until SIGTERM/SIGINT. A configuration error (a setting, or one `setup` finds) exits 2
    with its message; a dependency `setup` cannot reach (Unavailable) exits 1 with its message."""
    try:
        settings = load_settings(settings_cls)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level)
    log.info("starting %s", name)
    try:
        asyncio.run(_serve(settings, service_names, setup))
    except ConfigError as exc:  # found by setup: a template, a volume or a server the settings name
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Unavailable as exc:  # a dependency down at start (a database): say which, do not hang
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
