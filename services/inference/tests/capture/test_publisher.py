"""Publishing captured traces to a real nats-server: down, back, full queue, unreadable spool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.trace import Message, Trace
from tracewheel.core.trace_events import TraceSink
from tracewheel.inference.capture.publisher import TracePublisher, stop_publisher
from tracewheel.v1 import events_pb2


def trace(trace_id: str) -> Trace:
    return Trace(id=trace_id, messages=[Message(role="user", content=trace_id)])


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def published_ids(server: NatsServer, count: int) -> list[str]:
    client, js = await connect(server.url, "test-reader")
    subscription = await js.pull_subscribe(SUBJECT_TRACE_COMPLETED, durable="test-reader", stream="TRACES")
    messages = await subscription.fetch(count, timeout=5)
    await client.close()
    return [events_pb2.TraceCompleted.FromString(m.data).trace.id for m in messages]


async def test_traces_wait_on_disk_while_nats_is_down_and_leave_when_it_is_back(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "jetstream", log_file=tmp_path / "nats.log")  # not started yet
    sink = TraceSink(lambda: connect(server.url, "test-capture"))
    publisher = TracePublisher(sink.send, tmp_path / "spool", retry_s=0.2, send_timeout_s=0.5)
    task = asyncio.create_task(publisher.run())
    try:
        publisher.submit(trace("t1"))
        publisher.submit(trace("t2"))
        await wait_until(lambda: len(publisher.spool_files()) == 2)
        server.start()
        await wait_until(lambda: publisher.spool_files() == [])
        publisher.submit(trace("t3"))
        await wait_until(lambda: publisher.published == 3)
        assert await published_ids(server, 3) == ["t1", "t2", "t3"]  # oldest first
    finally:
        await stop_publisher(publisher, task)
        await sink.close()
        server.stop()


async def test_a_full_queue_spools_and_stopping_drains(nats_server: NatsServer, tmp_path: Path) -> None:
    sink = TraceSink(lambda: connect(nats_server.url, "test-capture"))
    publisher = TracePublisher(sink.send, tmp_path / "spool", queue_size=1, retry_s=0.2)
    for trace_id in ("a", "b", "c"):
        publisher.submit(trace(trace_id))  # nothing runs yet: one queued, two spooled
    assert len(publisher.spool_files()) == 2 and publisher.queue.qsize() == 1
    task = asyncio.create_task(publisher.run())
    await wait_until(lambda: publisher.published == 3)
    publisher.submit(trace("d"))
    await stop_publisher(publisher, task)  # what is still queued is sent before it stops
    assert publisher.published == 4 and publisher.spool_files() == []
    assert await published_ids(nats_server, 4) == ["b", "c", "a", "d"]  # the spool goes first
    await sink.close()


async def test_an_unreadable_spool_file_is_kept_aside(nats_server: NatsServer, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "00000000000000000001-broken.json").write_text("{half a trace")
    sink = TraceSink(lambda: connect(nats_server.url, "test-capture"))
    publisher = TracePublisher(sink.send, spool)
    assert await publisher.flush_spool() == 0
    assert [p.name for p in spool.iterdir()] == ["00000000000000000001-broken.json.bad"]
    await sink.close()


async def test_a_trace_over_the_size_limit_is_kept_not_sent(nats_server: NatsServer, tmp_path: Path) -> None:
    sink = TraceSink(lambda: connect(nats_server.url, "test-capture"))
    publisher = TracePublisher(sink.send, tmp_path / "spool", max_trace_bytes=1000, rejected_home=tmp_path)
    publisher.submit(Trace(id="big", messages=[Message(role="user", content="x" * 1200)]))
    publisher.submit(trace("small"))
    await publisher.drain()
    assert publisher.published == 1 and publisher.spool_files() == []
    kept = sorted(p.name for p in (tmp_path / "rejected").iterdir())
    assert len(kept) == 2 and "-big-" in kept[0] and kept[1].endswith(".reason.txt")
    await sink.close()
