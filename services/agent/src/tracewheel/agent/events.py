"""Where traces go: traces.v1.completed on NATS, Trelis-compatible files beside them, and
evaluation traces to files only.

A trace over the size limit (core.trace_size) is not sent: it is written to `<home>/rejected/`
with the reason and the next trace goes on; a publish that fails keeps its trace there too."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from nats.js import JetStreamContext

from tracewheel.core.settings import DEFAULT_HOME
from tracewheel.core.trace import Trace
from tracewheel.core.trace_events import publish_trace
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, TraceTooLarge, check_trace_size, keep_rejected
from tracewheel.core.trelis import write_trelis_file

logger = logging.getLogger(__name__)


class TraceOutput:
    """Where finished traces go: JetStream (when `js` is given) and/or a directory of JSON files.

    Args:
        max_trace_bytes: the largest trace published; a larger one is kept in `rejected_home`.
        rejected_home: the home whose `rejected/` folder keeps traces not published.
    """

    def __init__(
        self,
        js: JetStreamContext | None = None,
        trace_dir: Path | None = None,
        *,
        max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES,
        rejected_home: Path = DEFAULT_HOME,
    ) -> None:
        self.js = js
        self.trace_dir = trace_dir
        self.max_trace_bytes = max_trace_bytes
        self.rejected_home = rejected_home

    async def __call__(self, trace: Trace) -> None:
        """Writes and publishes one trace; one over the limit is kept, not sent, and nothing is raised.

        Raises:
            Exception: the publish failed (NATS down): the trace is kept in rejected/ first.
        """
        try:
            check_trace_size(trace, self.max_trace_bytes)
        except TraceTooLarge as exc:
            await asyncio.to_thread(keep_rejected, self.rejected_home, trace.id, trace, str(exc))
            return
        if self.trace_dir is not None:
            path = await asyncio.to_thread(write_trelis_file, trace, self.trace_dir)
            logger.info("wrote trace %s", path)
        if self.js is not None:
            try:
                stored = await publish_trace(self.js, trace)
            except Exception as exc:
                reason = f"publishing to NATS failed: {type(exc).__name__}: {exc}"
                await asyncio.to_thread(keep_rejected, self.rejected_home, trace.id, trace, reason)
                raise
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
