"""The service wired as `__main__` runs it: gRPC, REST, the ingest consumer and the build trigger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, publish
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.natsserver import NatsServer, free_port
from tracewheel.core.trace import validate_trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.dataset.__main__ import setup
from tracewheel.dataset.config import DatasetSettings
from tracewheel.inference.testing import TEST_CACHE as TOKENIZER_CACHE
from tracewheel.inference.testing import smollm2_tokenizer_dir
from tracewheel.v1 import dataset_pb2, dataset_pb2_grpc, events_pb2


async def test_a_published_trace_is_stored_built_and_announced(
    nats_server: NatsServer, tmp_path: Path, make_trace, monkeypatch
) -> None:
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path / "home"))
    settings = DatasetSettings(
        nats_url=nats_server.url,
        grpc_port=0,
        http_port=free_port(),
        base_model=str(smollm2_tokenizer_dir(TOKENIZER_CACHE)),
        build_threshold=1,
        build_debounce_s=0.1,
    )
    server = GrpcServer(["tracewheel.v1.Dataset"])
    port = server.bind(settings.grpc_host, settings.grpc_port)
    cleanup = await setup(settings, server)
    await server.start()
    client, js = await connect(nats_server.url, "test")
    try:
        trace = make_trace("run-1")
        proto = trace_to_proto(validate_trace(trace))
        await publish(js, SUBJECT_TRACE_COMPLETED, events_pb2.TraceCompleted(trace=proto), trace["id"])
        async with asyncio.timeout(30):
            while (await js.stream_info("DATASETS")).state.messages < 1:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            [dataset] = (await http.get("/api/datasets")).json()["datasets"]
        assert Path(dataset["path"]).parent == tmp_path / "home" / "datasets"
        assert (tmp_path / "home" / "dataset" / "traces.sqlite").exists()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stored = await dataset_pb2_grpc.DatasetStub(channel).GetTrace(dataset_pb2.GetTraceRequest(id="run-1"))
        assert stored.status == dataset_pb2.CURATION_STATUS_APPROVED
    finally:
        await client.close()
        await server.stop(0)
        await cleanup()
