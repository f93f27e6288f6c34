"""Entrypoint: `python -m tracewheel.dataset` (gRPC, REST, the ingest consumer, the build trigger)."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from tracewheel.core.events import connect, ensure_streams, run_consumer
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.nats_auth import declared_streams
from tracewheel.core.service import Cleanup, service_main
from tracewheel.core.trace_size import wire_limit
from tracewheel.dataset.build import BuildConfig, DatasetBuilder, load_chat_template
from tracewheel.dataset.build_options import BuildOptions
from tracewheel.dataset.config import DatasetSettings
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.events import INGEST_CONSUMER, DatasetEvents
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.server import DatasetServicer
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.tokenizer import LazyTokenizer
from tracewheel.v1 import dataset_pb2_grpc

log = logging.getLogger(__name__)


def build_config(settings: DatasetSettings) -> BuildConfig:
    """The build's configuration; without a base model or template setting there is no template
    yet, and builds are refused until TW_DATASET_BASE_MODEL is set."""
    configured = settings.base_model or settings.chat_template
    return BuildConfig(
        base_model=settings.base_model,
        chat_template=load_chat_template(settings.chat_template, settings.base_model) if configured else "",
        **{name: getattr(settings, name) for name in BuildOptions.model_fields},
    )


def console_config(settings: DatasetSettings) -> ConsoleConfig:
    """The console's peers (the service's own token is sent to them) and folders."""
    peers = Peers(
        {"trainer": settings.trainer_address, "inference": settings.inference_address, "agent": settings.agent_address},
        token=settings.auth_token.get_secret_value() if settings.auth_token else None,
        max_message_bytes=wire_limit(settings.max_trace_bytes),
    )
    return ConsoleConfig(peers, settings.resolved_artifacts_dir, settings.resolved_reports_dir)


def _http_server(
    settings: DatasetSettings, store: TraceStore, events: DatasetEvents, console: ConsoleConfig
) -> uvicorn.Server:
    """The REST API and curation UI's server, behind the service's HTTP security."""
    security = HttpSecurity.from_settings(
        settings.auth_token,
        settings,
        settings.http_host,
        "TW_DATASET_",
        open_paths=OPEN_PATHS,
        sign_in_path=SIGN_IN_PATH,
    )
    return uvicorn.Server(
        uvicorn.Config(
            create_app(store, events.build, settings.resolved_attachments_dir, security, console),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
        )
    )


async def setup(settings: DatasetSettings, server: GrpcServer) -> Cleanup:
    if settings.database_url is None:
        settings.resolved_store_path.parent.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(TraceStore, settings.store_location(), max_trace_bytes=settings.max_trace_bytes)
    builder = DatasetBuilder(
        store, LazyTokenizer(settings.base_model), build_config(settings), settings.resolved_artifacts_dir
    )
    client, js = await connect(settings.nats_url, "dataset", settings)
    await ensure_streams(js, declared_streams(settings.nats_user), settings.nats_stream_replicas)
    events = DatasetEvents(
        js,
        store,
        builder,
        threshold=settings.build_threshold,
        debounce_s=settings.build_debounce_s,
        rejected_home=settings.home,
    )
    await events.republish_latest()
    await events.resume_trigger()
    dataset_pb2_grpc.add_DatasetServicer_to_server(DatasetServicer(store, events.ingest, events.build), server.server)
    console = console_config(settings)
    http = _http_server(settings, store, events, console)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(http.serve(), name="dataset-http"),
        asyncio.create_task(run_consumer(js, INGEST_CONSUMER, events.handle_trace, stop), name="dataset-ingest"),
    ]

    async def cleanup() -> None:
        stop.set()
        console.stopping.set()  # open event streams end, or uvicorn would wait for them
        http.should_exit = True
        await events.trigger.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.drain()
        await console.peers.close()
        store.close()
        log.info("dataset service stopped")

    return cleanup


def main() -> None:
    service_main("dataset", DatasetSettings, ["tracewheel.v1.Dataset"], setup)


if __name__ == "__main__":
    main()
