"""NATS wiring: traces out on traces.v1.completed, and Trelis-compatible files beside them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from nats.js import JetStreamContext

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, publish
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.core.trelis import write_trelis_file
from tracewheel.v1 import events_pb2

logger = logging.getLogger(__name__)


async def publish_trace(js: JetStreamContext, trace: Trace) -> bool:
    """Publishes `TraceCompleted` with the trace id as Msg-Id; False when it was a duplicate."""
    payload = events_pb2.TraceCompleted(trace=trace_to_proto(trace))
    return await publish(js, SUBJECT_TRACE_COMPLETED, payload, trace.id)


class TraceOutput:
    """Where finished traces go: JetStream (when `js` is given) and/or a directory of JSON files."""

    def __init__(self, js: JetStreamContext | None = None, trace_dir: Path | None = None) -> None:
        self.js = js
        self.trace_dir = trace_dir

    async def __call__(self, trace: Trace) -> None:
        if self.trace_dir is not None:
            path = await asyncio.to_thread(write_trelis_file, trace, self.trace_dir)
            logger.info("wrote trace %s", path)
        if self.js is not None:
            stored = await publish_trace(self.js, trace)
            logger.info("published trace %s%s", trace.id, "" if stored else " (duplicate)")
