"""One size limit for traces: measured, refused with both figures, kept for a person, and carried
by NATS and gRPC up to the limit (their own defaults are 1 MB and 4 MB)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from tracewheel.core.errors import ConfigError
from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams, publish
from tracewheel.core.grpc_server import GrpcServer, message_size_options
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.trace import Message, Trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.core.trace_size import (
    DEFAULT_MAX_TRACE_BYTES,
    REJECTED_DIR,
    TraceTooLarge,
    check_trace_size,
    configured_max_trace_bytes,
    keep_rejected,
    trace_size,
    wire_limit,
)
from tracewheel.v1 import events_pb2


def trace_of(size: int, trace_id: str = "big") -> Trace:
    """A valid trace whose JSON is about `size` bytes (one long user message)."""
    return Trace(id=trace_id, model="m", messages=[Message(role="user", content="x" * size)])


def test_a_trace_over_the_limit_is_refused_naming_both_figures() -> None:
    small = trace_of(100)
    assert check_trace_size(small, 10_000) == trace_size(small)
    with pytest.raises(TraceTooLarge, match=r"is \d+ bytes as JSON, over the limit of 10000 bytes") as refused:
        check_trace_size(trace_of(20_000), 10_000)
    assert refused.value.limit == 10_000 and refused.value.size > 20_000


def test_a_refused_trace_is_kept_as_it_came_with_its_reason(tmp_path: Path) -> None:
    kept = keep_rejected(tmp_path, "a/b", b'{"id": "\xff"}', "not UTF-8")
    again = keep_rejected(tmp_path, "a/b", trace_of(10), "too large")
    assert kept.parent == tmp_path / REJECTED_DIR and kept != again
    assert kept.read_bytes() == b'{"id": "\xff"}'
    assert kept.with_name(kept.name.removesuffix(".json") + ".reason.txt").read_text() == "not UTF-8\n"
    assert Trace.model_validate_json(again.read_text()).id == "big"


def test_the_limit_outside_the_services_comes_from_the_environment() -> None:
    assert configured_max_trace_bytes({}) == DEFAULT_MAX_TRACE_BYTES
    assert configured_max_trace_bytes({"TRACEWHEEL_MAX_TRACE_BYTES": "2048"}) == 2048
    with pytest.raises(ConfigError, match="TRACEWHEEL_MAX_TRACE_BYTES"):
        configured_max_trace_bytes({"TRACEWHEEL_MAX_TRACE_BYTES": "4MB"})


async def test_nats_carries_a_trace_over_its_own_default_of_one_megabyte(nats_server: NatsServer) -> None:
    trace = trace_of(3 * 1024 * 1024)  # under the default limit, three times NATS's default max_payload
    client, js = await connect(nats_server.url, "test")
    try:
        await ensure_streams(js)
        payload = events_pb2.TraceCompleted(trace=trace_to_proto(trace))
        assert payload.ByteSize() <= wire_limit(DEFAULT_MAX_TRACE_BYTES)
        assert await publish(js, SUBJECT_TRACE_COMPLETED, payload, trace.id)
    finally:
        await client.close()


async def test_grpc_carries_messages_up_to_the_wire_limit() -> None:
    """A 5 MB request (gRPC's own limit is 4 MB) reaches a server set to the wire limit."""
    limit = wire_limit(DEFAULT_MAX_TRACE_BYTES)
    server = GrpcServer(["tracewheel.v1.Test"], max_message_bytes=limit)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    try:
        padded = health_pb2.HealthCheckRequest(service="x" * (5 * 1024 * 1024))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=message_size_options(limit)) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as answered:
                await check(padded)
        assert answered.value.code() == grpc.StatusCode.NOT_FOUND  # read whole: an unknown service, not too large
    finally:
        await server.stop(0)
