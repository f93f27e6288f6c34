"""`traces.v1.completed`: how any publisher (the agent, capture, an importer) sends a finished trace.

The payload is `TraceCompleted` with the trace; the `Nats-Msg-Id` is the trace id, so a trace
sent twice (a retry after a lost ack, a spooled trace sent again) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from tracewheel.core.events import STREAMS, SUBJECT_TRACE_COMPLETED, ensure_streams, publish
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.v1 import events_pb2

log = logging.getLogger(__name__)

TRACES_STREAM = "TRACES"
Connect = Callable[[], Awaitable[tuple[NatsClient, JetStreamContext]]]


async def publish_trace(js: JetStreamContext, trace: Trace) -> bool:
    """Publishes `TraceCompleted` with the trace id as Msg-Id; False when it was a duplicate."""
    payload = events_pb2.TraceCompleted(trace=trace_to_proto(trace))
    return await publish(js, SUBJECT_TRACE_COMPLETED, payload, trace.id)


class TraceSink:
    """Publishes traces over a connection made on first use, in the background.

    A send while NATS is unreachable waits for the connection (the caller bounds the wait, e.g.
    with `asyncio.wait_for`); the connection attempt itself goes on in its own task, so the
    first send after NATS comes back finds it connected.

    Args:
        connect: makes the connection (e.g. `lambda: events.connect(url, name, options)`).
        streams: the streams to declare once connected; default the TRACES stream only (a
            publisher's NATS user may declare no other).
    """

    def __init__(self, connect: Connect, streams: dict[str, list[str]] | None = None) -> None:
        self._connect = connect
        self._streams = streams if streams is not None else {TRACES_STREAM: STREAMS[TRACES_STREAM]}
        self._task: asyncio.Task[tuple[NatsClient, JetStreamContext]] | None = None

    async def _connected(self) -> tuple[NatsClient, JetStreamContext]:
        client, js = await self._connect()
        await ensure_streams(js, self._streams)
        return client, js

    async def send(self, trace: Trace) -> bool:
        """Publishes one trace; False when NATS already had it.

        Raises:
            Exception: the connection or the publish failed (NATS errors, a timeout).
        """
        task = self._task
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._task = asyncio.create_task(self._connected(), name="trace-sink-connect")
        _, js = await asyncio.shield(task)
        return await publish_trace(js, trace)

    async def close(self) -> None:
        """Stops connecting, or closes the connection."""
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            return
        if not self._task.cancelled() and self._task.exception() is None:
            client, _ = self._task.result()
            with contextlib.suppress(Exception):
                await client.close()
