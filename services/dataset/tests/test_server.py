"""The gRPC Dataset servicer on a real grpc.aio server (free port) over a real store and builder."""

from __future__ import annotations

import grpc
import pytest

from tracewheel.core.trace import validate_trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.v1 import dataset_pb2


async def test_grpc_ingest_list_curate_build(servers, make_trace) -> None:
    _client, stub = servers
    proto = trace_to_proto(validate_trace(make_trace("run-1")))
    first = await stub.IngestTrace(dataset_pb2.IngestTraceRequest(trace=proto))
    again = await stub.IngestTrace(dataset_pb2.IngestTraceRequest(trace=proto))
    assert first.created and not again.created and first.status == dataset_pb2.CURATION_STATUS_APPROVED
    listed = await stub.ListTraces(dataset_pb2.ListTracesRequest(status=dataset_pb2.CURATION_STATUS_APPROVED))
    assert [t.trace.id for t in listed.traces] == ["run-1"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetTrace(dataset_pb2.GetTraceRequest(id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.Curate(
            dataset_pb2.CurateRequest(id="run-1", status=dataset_pb2.CURATION_STATUS_PENDING, base_revision=3)
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    built = await stub.Build(dataset_pb2.BuildRequest(force=True))
    assert built.version.startswith("ds-") and list(built.trace_ids) == ["run-1"] and built.train_rows == 1
    listed_builds = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest())
    assert [d.version for d in listed_builds.datasets] == [built.version]


async def test_grpc_curate_checks_a_revision_only_when_given_and_tags(servers, make_trace, store) -> None:
    _client, stub = servers
    await stub.IngestTrace(dataset_pb2.IngestTraceRequest(trace=trace_to_proto(validate_trace(make_trace("run-1")))))
    store.edit_message("run-1", 0, 4, "The Red kettle, 20 EUR.")  # now at revision 1
    rejected = dataset_pb2.CURATION_STATUS_REJECTED
    decided = await stub.Curate(dataset_pb2.CurateRequest(id="run-1", status=rejected, reason="wrong price"))
    assert decided.status == rejected and decided.revision == 1
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.Curate(dataset_pb2.CurateRequest(id="run-1", status=rejected, reason="x", base_revision=0))
    assert stale.value.code() == grpc.StatusCode.ABORTED and "at revision 1, not 0" in stale.value.details()
    tagged = await stub.Tag(dataset_pb2.TagRequest(id="run-1", add=["kettle", "price"]))
    untagged = await stub.Tag(dataset_pb2.TagRequest(id="run-1", remove=["price"]))
    assert set(tagged.tags) >= {"kettle", "price"} and "price" not in untagged.tags and "kettle" in untagged.tags
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.Tag(dataset_pb2.TagRequest(id="nope", add=["x"]))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
