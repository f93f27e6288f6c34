"""Where traces go: traces.v1.completed on NATS, Trelis-compatible files beside them, and
evaluation traces to files only."""

from __future__ import annotations

import asyncio
import logging
import re
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


class EvalTraceFiles:
    """Evaluation traces as Trelis files under `<directory>/<model>/<suite>/`: kept to be read
    (why did a task fail?), never published, since held-out tasks must stay out of datasets."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def __call__(self, trace: Trace) -> None:
        model = re.sub(r"[^A-Za-z0-9._-]", "_", trace.model).lstrip(".") or "_"
        folder = self.directory / model / (trace.task.suite if trace.task else "tasks")
        await asyncio.to_thread(write_trelis_file, trace, folder)
