"""Events against a real nats-server: dedup, redelivery, dead letters, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from tracewheel.core.events import (
    SUBJECT_TRACE_COMPLETED,
    ConsumerSpec,
    PoisonMessage,
    connect,
    ensure_streams,
    handle_one,
    publish,
    run_consumer,
    subscribe,
)
from tracewheel.core.natsserver import NatsServer
from tracewheel.v1 import events_pb2, trace_pb2

SPEC = ConsumerSpec(
    "TRACES", SUBJECT_TRACE_COMPLETED, "test-ingest", events_pb2.TraceCompleted, backoff_s=(0.1,), ack_wait_s=2.0
)


def completed(trace_id: str) -> events_pb2.TraceCompleted:
    return events_pb2.TraceCompleted(trace=trace_pb2.Trace(id=trace_id))


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def consume_into(
    seen: list[str],
    js,
    stop: asyncio.Event,
    spec: ConsumerSpec = SPEC,
    handler: Callable[[events_pb2.TraceCompleted, Msg], Awaitable[None]] | None = None,
) -> asyncio.Task:
    async def record(payload: events_pb2.TraceCompleted, msg: Msg) -> None:
        seen.append(payload.trace.id)

    return asyncio.create_task(run_consumer(js, spec, handler or record, stop, poll_s=0.2))


async def test_streams_are_declared_idempotently(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    await ensure_streams(js)
    names = {info.config.name for info in await js.streams_info()}
    assert {"TRACES", "DATASETS", "MODELS", "DEADLETTER"} <= names
    await client.close()


async def test_duplicate_msg_id_is_stored_once(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    assert await publish(js, SUBJECT_TRACE_COMPLETED, completed("t1"), "t1") is True
    assert await publish(js, SUBJECT_TRACE_COMPLETED, completed("t1"), "t1") is False
    assert (await js.stream_info("TRACES")).state.messages == 1
    await client.close()


async def test_message_not_acked_is_redelivered(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("t1"), "t1")
    # a consumer that fetched but died before acking
    subscription = await subscribe(js, SPEC)
    (first,) = await subscription.fetch(1, timeout=5)
    assert first.metadata.num_delivered == 1
    await client.close()  # killed: no ack

    client, js = await connect(nats_server.url, "test")
    seen: list[str] = []
    stop = asyncio.Event()
    task = await consume_into(seen, js, stop)
    await wait_until(lambda: seen == ["t1"])  # after ack_wait, delivered again
    stop.set()
    await task
    await client.close()


async def test_undecodable_payload_is_dead_lettered_and_the_next_is_processed(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    await js.publish(SUBJECT_TRACE_COMPLETED, b"\xff\xff\xff not protobuf", headers={"Nats-Msg-Id": "bad"})
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("good"), "good")
    seen: list[str] = []
    stop = asyncio.Event()
    task = await consume_into(seen, js, stop)
    await wait_until(lambda: seen == ["good"])
    stop.set()
    await task
    dead = await js.pull_subscribe("deadletter.>", durable="inspect", stream="DEADLETTER")
    (letter,) = await dead.fetch(1, timeout=5)
    assert letter.data == b"\xff\xff\xff not protobuf"
    assert letter.headers["Tw-Original-Subject"] == SUBJECT_TRACE_COMPLETED
    assert "decode error" in letter.headers["Tw-Reason"]
    # terminated: nothing left pending for the consumer
    info = await js.consumer_info("TRACES", SPEC.durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0
    await client.close()


async def test_transient_failure_is_retried_and_poison_is_terminated(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("flaky"), "flaky")
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("poison"), "poison")
    attempts: dict[str, int] = {}
    done: list[str] = []

    async def handler(payload: events_pb2.TraceCompleted, msg: Msg) -> None:
        attempts[payload.trace.id] = attempts.get(payload.trace.id, 0) + 1
        if payload.trace.id == "poison":
            raise PoisonMessage("this trace can never be stored")
        if attempts["flaky"] < 3:
            raise ConnectionError("store busy")
        done.append(payload.trace.id)

    stop = asyncio.Event()
    task = await consume_into([], js, stop, handler=handler)
    await wait_until(lambda: done == ["flaky"] and attempts.get("poison") == 1)
    stop.set()
    await task
    assert attempts == {"flaky": 3, "poison": 1}
    assert (await js.stream_info("DEADLETTER")).state.messages == 1
    await client.close()


async def test_handler_that_always_fails_is_dead_lettered_after_max_deliver(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    spec = ConsumerSpec(
        "TRACES", SUBJECT_TRACE_COMPLETED, "give-up", events_pb2.TraceCompleted, max_deliver=2, backoff_s=(0.05,)
    )
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("doomed"), "doomed")
    subscription = await subscribe(js, spec)
    outcomes = []

    async def failing(payload: events_pb2.TraceCompleted, msg: Msg) -> None:
        raise RuntimeError("always")

    while len(outcomes) < 2:
        for msg in await subscription.fetch(1, timeout=5):
            outcomes.append(await handle_one(js, spec, msg, failing))
    assert outcomes == ["nak", "terminated"]
    assert (await js.stream_info("DEADLETTER")).state.messages == 1
    await client.close()


async def test_server_restart_keeps_the_consumer_position(nats_server: NatsServer) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    for trace_id in ("a", "b"):
        await publish(js, SUBJECT_TRACE_COMPLETED, completed(trace_id), trace_id)
    seen: list[str] = []
    stop = asyncio.Event()
    task = await consume_into(seen, js, stop)
    await wait_until(lambda: seen == ["a", "b"])
    stop.set()
    await task
    await client.close()

    nats_server.stop()
    nats_server.start()

    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("c"), "c")
    await publish(js, SUBJECT_TRACE_COMPLETED, completed("a"), "a")  # a duplicate after restart: dropped
    seen.clear()
    stop = asyncio.Event()
    task = await consume_into(seen, js, stop)
    await wait_until(lambda: seen == ["c"])
    stop.set()
    await task
    await client.close()
