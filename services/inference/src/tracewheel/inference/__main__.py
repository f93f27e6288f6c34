"""Entrypoint: `python -m tracewheel.inference` (OpenAI HTTP API + gRPC control)."""

from __future__ import annotations

import asyncio

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_server import HttpServer
from tracewheel.core.service import Cleanup, service_main
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.openai_api import create_app
from tracewheel.inference.runtime import build_state
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.v1 import inference_pb2_grpc

SERVICE_NAME = "tracewheel.v1.InferenceControl"


async def setup(settings: InferenceSettings, server: GrpcServer) -> Cleanup:
    state = await asyncio.to_thread(build_state, settings)
    inference_pb2_grpc.add_InferenceControlServicer_to_server(InferenceControlServicer(state.registry), server.server)
    http = HttpServer(create_app(state), settings.http_host, settings.http_port)
    await http.start()

    async def cleanup() -> None:
        await http.stop()
        state.engine.stop()

    return cleanup


def main() -> None:
    service_main("inference", InferenceSettings, [SERVICE_NAME], setup)


if __name__ == "__main__":
    main()
