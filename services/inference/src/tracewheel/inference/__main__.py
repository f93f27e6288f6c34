"""Entrypoint: `python -m tracewheel.inference` (OpenAI HTTP API, gRPC control, deployments)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from tracewheel.core.events import connect, ensure_streams, run_consumer
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.core.nats_auth import declared_streams
from tracewheel.core.service import Cleanup, service_main
from tracewheel.core.trace_events import TraceSink
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.capture.http import install_capture
from tracewheel.inference.capture.runtime import CaptureRuntime, capture_runtime
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.deploy import Deployer
from tracewheel.inference.events import TRAINED, follow_deployments, make_alias_announcer, make_trained_handler
from tracewheel.inference.openai_api import create_app
from tracewheel.inference.passthrough import NoAdapters, create_passthrough_app
from tracewheel.inference.provenance import Provenance
from tracewheel.inference.runtime import build_state
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.inference.vllm_backend import (
    VllmAdapters,
    VllmProcess,
    create_proxy_app,
    vllm_command,
    write_chat_template,
)
from tracewheel.v1 import inference_pb2_grpc

SERVICE_NAME = "tracewheel.v1.InferenceControl"


async def _backend(settings: InferenceSettings) -> tuple[ModelRegistry, Any, Callable[[], object]]:
    """The registry, the HTTP app and a stop function (maybe async) of the configured backend."""
    security = HttpSecurity.from_settings(settings.auth_token, settings, settings.http_host, "TW_INFERENCE_")
    if settings.backend == "upstream":
        app, client = create_passthrough_app(settings, security)
        return ModelRegistry(NoAdapters(), settings.served_model_name or "upstream"), app, client.aclose
    if settings.backend == "vllm":
        served = settings.served_model_name or settings.model
        url = f"http://127.0.0.1:{settings.vllm_port}"
        template = write_chat_template(settings, settings.model, settings.home / "inference")
        process = VllmProcess(vllm_command(settings, settings.model, served, template), url)
        await asyncio.to_thread(process.start)
        registry = ModelRegistry(
            VllmAdapters(url), served, aliases={settings.deploy_alias: served}, base_model=settings.model
        )
        return registry, create_proxy_app(registry, url, security), process.stop
    state = await asyncio.to_thread(build_state, settings)
    return state.registry, create_app(state, security), state.engine.stop


async def setup(settings: InferenceSettings, server: GrpcServer) -> Cleanup:
    registry, app, stop_backend = await _backend(settings)
    deployer = await asyncio.to_thread(
        Deployer,
        registry,
        settings.home / "inference" / "deployments.json",
        alias=settings.deploy_alias,
        mode=settings.deploy_gate,
        min_gain=settings.deploy_min_gain,
        max_p=settings.deploy_max_p,
        # a trained event is trusted only as far as the trainer's record on the shared volume says
        provenance=Provenance(settings.resolved_adapters_dir(), settings.model),
    )
    control = InferenceControlServicer(registry, deployer)
    inference_pb2_grpc.add_InferenceControlServicer_to_server(control, server.server)
    capture, sink = await _start_capture(settings, app) if settings.capture else (None, None)
    http = HttpServer(app, settings.http_host, settings.http_port)
    await http.start()
    stop = asyncio.Event()
    consumers: list[asyncio.Task[None]] = []
    nats_client = None
    if settings.consume_events and settings.backend != "upstream":
        nats_client, js = await connect(settings.nats_url, "inference", settings)
        await ensure_streams(js, declared_streams(settings.nats_user), settings.nats_stream_replicas)
        # the gate runs on one replica (a shared durable); every replica follows what was deployed
        consumers.append(asyncio.create_task(run_consumer(js, TRAINED, make_trained_handler(js, deployer), stop)))
        consumers.append(asyncio.create_task(follow_deployments(js, deployer, stop)))
        control.announce = make_alias_announcer(js, deployer)  # a move by hand reaches every replica

    async def cleanup() -> None:
        stop.set()
        for consumer in consumers:
            with contextlib.suppress(Exception):
                await consumer
        if nats_client is not None:
            await nats_client.close()
        await http.stop()
        if capture is not None and sink is not None:
            await capture.stop()  # open conversations completed, every trace sent or spooled
            await sink.close()
        if inspect.isawaitable(stopped := stop_backend()):
            await stopped

    return cleanup


async def _start_capture(settings: InferenceSettings, app: Any) -> tuple[CaptureRuntime, TraceSink]:
    """Capture on the OpenAI app (docs/capture.md): conversations published as traces.v1.completed."""
    sink = TraceSink(lambda: connect(settings.nats_url, "inference-capture", settings))
    capture = capture_runtime(settings, settings.home, sink.send, settings.max_trace_bytes)
    install_capture(app, capture)
    await capture.start()
    return capture, sink


def main() -> None:
    service_main("inference", InferenceSettings, [SERVICE_NAME], setup)


if __name__ == "__main__":
    main()
