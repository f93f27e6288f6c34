"""gRPC `tracewheel.v1.Dataset`: transport only, proto <-> the store and the build actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.dataset.build import BuildResult
from tracewheel.dataset.proto_convert import dataset_built_event, status_from_proto, status_to_proto, stored_to_proto
from tracewheel.dataset.records import IngestResult, TraceQuery
from tracewheel.dataset.store import TraceStore
from tracewheel.v1 import dataset_pb2, dataset_pb2_grpc, events_pb2

Ingest = Callable[[Trace], Awaitable[IngestResult]]
Build = Callable[..., Awaitable[BuildResult]]
"""`build(force=...)`: builds (publishing the event of a new build)."""

DEFAULT_PAGE_SIZE = 50


class DatasetServicer(dataset_pb2_grpc.DatasetServicer):
    def __init__(self, store: TraceStore, ingest: Ingest, build: Build) -> None:
        self.store = store
        self.ingest = ingest
        self.build = build

    async def IngestTrace(
        self, request: dataset_pb2.IngestTraceRequest, context: grpc.aio.ServicerContext
    ) -> dataset_pb2.IngestTraceResponse:
        result = await self.ingest(trace_from_proto(request.trace))
        return dataset_pb2.IngestTraceResponse(
            created=result.created, status=status_to_proto(result.status), reason=result.reason
        )

    async def ListTraces(
        self, request: dataset_pb2.ListTracesRequest, context: grpc.aio.ServicerContext
    ) -> dataset_pb2.ListTracesResponse:
        query = TraceQuery(
            status=status_from_proto(request.status), suite=request.suite or None, model=request.model or None
        )
        page = self.store.list_traces(query, request.page_size or DEFAULT_PAGE_SIZE, request.page_token)
        return dataset_pb2.ListTracesResponse(
            traces=[stored_to_proto(stored) for stored in page.traces], next_page_token=page.next_page_token
        )

    async def GetTrace(
        self, request: dataset_pb2.GetTraceRequest, context: grpc.aio.ServicerContext
    ) -> dataset_pb2.StoredTrace:
        return stored_to_proto(self.store.get(request.id))

    async def Curate(
        self, request: dataset_pb2.CurateRequest, context: grpc.aio.ServicerContext
    ) -> dataset_pb2.StoredTrace:
        status = status_from_proto(request.status)
        if status is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "status: pending, approved or rejected")
        base_revision = request.base_revision if request.HasField("base_revision") else None
        stored = self.store.set_status(request.id, status, request.reason, base_revision=base_revision)
        return stored_to_proto(stored)

    async def Tag(self, request: dataset_pb2.TagRequest, context: grpc.aio.ServicerContext) -> dataset_pb2.StoredTrace:
        stored = self.store.add_tags(request.id, request.add) if request.add else self.store.get(request.id)
        if request.remove:
            stored = self.store.remove_tags(request.id, request.remove)
        return stored_to_proto(stored)

    async def Build(
        self, request: dataset_pb2.BuildRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.DatasetBuilt:
        result = await self.build(force=request.force)
        return dataset_built_event(result.record)

    async def ListDatasets(
        self, request: dataset_pb2.ListDatasetsRequest, context: grpc.aio.ServicerContext
    ) -> dataset_pb2.ListDatasetsResponse:
        return dataset_pb2.ListDatasetsResponse(
            datasets=[dataset_built_event(record) for record in self.store.list_builds()]
        )
