"""Capture in a running service: the book of conversations, the publisher, and the idle sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from tracewheel.core.trace import Trace
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES
from tracewheel.inference.capture.book import CaptureBook
from tracewheel.inference.capture.call import CapturedCall
from tracewheel.inference.capture.feedback import Feedback
from tracewheel.inference.capture.options import CaptureOptions
from tracewheel.inference.capture.publisher import Send, TracePublisher, stop_publisher

log = logging.getLogger(__name__)


class CaptureRuntime:
    """Records calls into the book and hands completed traces to the publisher.

    Everything runs on the service's event loop; `observe` and `complete` only touch memory
    and the publisher's queue, so a reply never waits on NATS or on disk.

    Args:
        book: the open conversations.
        publisher: where completed traces go.
    """

    def __init__(self, book: CaptureBook, publisher: TracePublisher) -> None:
        self.book = book
        self.publisher = publisher
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Starts the publisher and the idle sweep."""
        self._tasks = [
            asyncio.create_task(self.publisher.run(), name="capture-publisher"),
            asyncio.create_task(self._sweep(), name="capture-idle-sweep"),
        ]

    def observe(self, call: CapturedCall) -> None:
        """Records one call; traces it completes are queued for publishing."""
        for trace in self.book.record(call):
            self._submit(trace)

    def complete(self, key: str, feedback: Feedback | None) -> Trace:
        """Completes an open trace now, with the client's feedback.

        Raises:
            NotFound: no open trace has that key.
            Conflict: it was completed already.
        """
        trace = self.book.complete(key, feedback)
        self._submit(trace)
        return trace

    def _submit(self, trace: Trace) -> None:
        log.info(
            "captured trace %s completed (%s, %d messages)",
            trace.id,
            trace.metadata.extra.get("capture_completed_by", ""),
            len(trace.messages),
        )
        self.publisher.submit(trace)

    async def _sweep(self) -> None:
        period = min(self.book.idle_timeout_s / 4, 1.0)
        while True:
            await asyncio.sleep(period)
            for trace in self.book.expire():
                self._submit(trace)

    async def stop(self) -> None:
        """Completes every open conversation, then sends (or spools) every trace still queued."""
        sweep = self._tasks[1] if len(self._tasks) > 1 else None
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        for trace in self.book.close_all():
            self._submit(trace)
        if self._tasks:
            await stop_publisher(self.publisher, self._tasks[0])
        else:
            await self.publisher.drain()
        self._tasks = []


def capture_runtime(
    options: CaptureOptions, home: Path, send: Send, max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES
) -> CaptureRuntime:
    """A runtime with `options`' idle timeout, queue size and retry period, publishing with `send`;
    traces wait in `<home>/inference/capture-spool/`, oversized ones go to `<home>/rejected/`."""
    publisher = TracePublisher(
        send,
        home / "inference" / "capture-spool",
        queue_size=options.capture_queue_size,
        retry_s=options.capture_retry_s,
        max_trace_bytes=max_trace_bytes,
        rejected_home=home,
    )
    return CaptureRuntime(CaptureBook(options.capture_idle_timeout_s), publisher)
