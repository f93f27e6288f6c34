"""Reading what capture published: the traces on traces.v1.completed, as the dataset service would."""

from __future__ import annotations

from nats.js import JetStreamContext

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.v1 import events_pb2


async def next_traces(js: JetStreamContext, count: int, timeout_s: float = 30.0) -> list[Trace]:
    """The next `count` traces published (a durable consumer `test-reader`, acked as read)."""
    subscription = await js.pull_subscribe(SUBJECT_TRACE_COMPLETED, durable="test-reader", stream="TRACES")
    traces: list[Trace] = []
    while len(traces) < count:  # a fetch returns what has arrived, at least one
        for message in await subscription.fetch(count - len(traces), timeout=timeout_s):
            await message.ack()
            traces.append(trace_from_proto(events_pb2.TraceCompleted.FromString(message.data).trace))
    return traces
