"""The dataset service's NATS wiring against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams, publish, run_consumer
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.trace import validate_trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.dataset.events import INGEST_CONSUMER, DatasetEvents
from tracewheel.v1 import events_pb2

THRESHOLD = 3


async def wait_until(condition: Callable[[], Any], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.05)


@pytest.fixture
async def running(nats_server: NatsServer, store, make_builder) -> AsyncIterator[tuple[Any, DatasetEvents]]:
    client, js = await connect(nats_server.url, "test-dataset")
    await ensure_streams(js)
    events = DatasetEvents(js, store, make_builder(), threshold=THRESHOLD, debounce_s=0.3)
    stop = asyncio.Event()
    consumer = asyncio.create_task(run_consumer(js, INGEST_CONSUMER, events.handle_trace, stop, poll_s=0.2))
    yield js, events
    stop.set()
    await events.trigger.cancel()
    await consumer
    await client.close()


def completed(data: dict[str, Any]) -> events_pb2.TraceCompleted:
    return events_pb2.TraceCompleted(trace=trace_to_proto(validate_trace(data)))


async def stream_count(js: Any, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def drained(js: Any) -> bool:
    info = await js.consumer_info("TRACES", INGEST_CONSUMER.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_burst_of_approved_traces_builds_once(running, make_trace, store) -> None:
    js, events = running
    for index in range(THRESHOLD + 1):
        trace = make_trace(f"run-{index}", task_id=f"task-{index}")
        await publish(js, SUBJECT_TRACE_COMPLETED, completed(trace), trace["id"])

    async def built() -> bool:
        return await stream_count(js, "DATASETS") >= 1

    await wait_until(built)
    await wait_until(lambda: drained(js))
    await events.trigger.wait_idle()
    assert await stream_count(js, "DATASETS") == 1
    [record] = store.list_builds()
    sub = await js.pull_subscribe("datasets.v1.built", durable="check", stream="DATASETS")
    [msg] = await sub.fetch(1, timeout=5)
    event = events_pb2.DatasetBuilt.FromString(msg.data)
    assert event.version == record.version and msg.headers["Nats-Msg-Id"] == f"dataset:{record.version}"
    assert len(event.trace_ids) == THRESHOLD + 1 and event.supervised_tokens > 0

    # a redelivered trace (another Msg-Id, same trace id) is a no-op: no new revision, no build
    trace = make_trace("run-0", task_id="task-0")
    await publish(js, SUBJECT_TRACE_COMPLETED, completed(trace), "redelivery-of-run-0")
    await wait_until(lambda: drained(js))
    await events.trigger.wait_idle()
    assert store.get("run-0").revision == 0 and await stream_count(js, "DATASETS") == 1

    # republishing on start is deduplicated by the event id
    await events.republish_latest()
    assert await stream_count(js, "DATASETS") == 1


async def test_a_malformed_trace_is_dead_lettered(running, make_trace, store) -> None:
    js, _events = running
    bad = completed(make_trace("bad"))
    bad.trace.messages[2].tool_calls[0].function.arguments = "{not json"
    await publish(js, SUBJECT_TRACE_COMPLETED, bad, "bad")
    good = make_trace("good")
    await publish(js, SUBJECT_TRACE_COMPLETED, completed(good), "good")

    async def dead_lettered() -> bool:
        return await stream_count(js, "DEADLETTER") == 1

    await wait_until(dead_lettered)
    await wait_until(lambda: drained(js))
    assert [s.trace.id for s in store.list_traces().traces] == ["good"]
    sub = await js.pull_subscribe("deadletter.>", durable="check", stream="DEADLETTER")
    [msg] = await sub.fetch(1, timeout=5)
    assert "not valid JSON" in msg.headers["Tw-Reason"] and json.dumps(msg.headers["Nats-Msg-Id"]) == '"bad"'


async def test_a_build_recorded_but_not_published_is_published_on_start(running, make_trace, store) -> None:
    js, events = running
    store.ingest(make_trace("run-1"))
    record = events.builder.build().record  # the service died right after recording it
    assert await stream_count(js, "DATASETS") == 0
    await events.republish_latest()
    await events.republish_latest()
    assert await stream_count(js, "DATASETS") == 1
    sub = await js.pull_subscribe("datasets.v1.built", durable="check", stream="DATASETS")
    [msg] = await sub.fetch(1, timeout=5)
    assert events_pb2.DatasetBuilt.FromString(msg.data).version == record.version


async def test_traces_stored_before_a_crash_are_built_after_the_restart(running, make_trace, store) -> None:
    js, events = running
    for i in range(THRESHOLD):  # stored, but the service died before its debounced build
        store.ingest(make_trace(f"run-{i}", task_id=f"task-{i}"))
    await events.resume_trigger()
    await events.trigger.wait_idle()
    assert await stream_count(js, "DATASETS") == 1
    await events.resume_trigger()  # nothing waits any more: no second build
    await events.trigger.wait_idle()
    assert await stream_count(js, "DATASETS") == 1


async def test_build_below_the_threshold_needs_force(running, make_trace, store) -> None:
    js, events = running
    store.ingest(make_trace("run-1"))
    with pytest.raises(FailedPrecondition, match="threshold 3"):
        await events.build(force=False)
    result = await events.build(force=True)
    assert result.created and await stream_count(js, "DATASETS") == 1
