"""Completed traces leave in the background; what cannot leave now waits on disk.

`submit` never blocks (the reply that completed a trace is not held up by NATS): the trace
goes into a bounded queue, or straight to the spool folder when the queue is full. `run`
sends queued traces; a send that fails writes the trace to the spool, and while the spool
holds traces new ones join it (oldest first), retried every `retry_s`. A spooled trace is
removed only after it was sent; a spool file that cannot be read is renamed `*.bad` and
logged, never deleted. Sending twice is harmless: the trace id is the `Nats-Msg-Id`. A trace
over the size limit (core.trace_size) is never sent: it is kept in `<home>/rejected/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError

from tracewheel.core.files import write_text_atomically
from tracewheel.core.trace import Trace
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, TraceTooLarge, check_trace_size, keep_rejected

log = logging.getLogger(__name__)

Send = Callable[[Trace], Awaitable[object]]


class TracePublisher:
    """A bounded queue of traces, a background sender, and a spool folder.

    Args:
        send: publishes one trace (raises when it could not).
        spool_dir: where traces wait while they cannot be sent.
        queue_size: traces held in memory before they go straight to the spool.
        retry_s: how often the spool is sent again.
        send_timeout_s: how long one send may take before it counts as failed.
        max_trace_bytes: the largest trace sent; a larger one is kept in `<rejected_home>/rejected/`.
    """

    def __init__(
        self,
        send: Send,
        spool_dir: Path,
        *,
        queue_size: int = 1000,
        retry_s: float = 5.0,
        send_timeout_s: float = 5.0,
        max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES,
        rejected_home: Path | None = None,
    ) -> None:
        self.send = send
        self.spool_dir = spool_dir
        self.max_trace_bytes = max_trace_bytes
        self.rejected_home = rejected_home or spool_dir.parent
        self.retry_s = retry_s
        self.send_timeout_s = send_timeout_s
        self.queue: asyncio.Queue[Trace] = asyncio.Queue(maxsize=queue_size)
        self.published = 0
        self.spooled = 0
        self.stopping = False

    def submit(self, trace: Trace) -> None:
        """Queues a trace for sending; never blocks (a full queue spools it)."""
        try:
            self.queue.put_nowait(trace)
        except asyncio.QueueFull:
            log.warning(
                "capture queue full (%d traces): trace %s waits in %s", self.queue.maxsize, trace.id, self.spool_dir
            )
            self._spool(trace)

    def spool_files(self) -> list[Path]:
        """The traces waiting on disk, oldest first."""
        return sorted(self.spool_dir.glob("*.json")) if self.spool_dir.is_dir() else []

    async def run(self) -> None:
        """Sends traces until `stopping` (see `stop_publisher`); the spool left by an earlier run goes first."""
        await self.flush_spool()
        next_retry = time.monotonic() + self.retry_s
        while not self.stopping:
            try:
                async with asyncio.timeout(self.retry_s):
                    trace = await self.queue.get()
            except TimeoutError:
                trace = None
            if trace is not None:
                await self._send_or_spool(trace)
            if time.monotonic() >= next_retry:
                await self.flush_spool()
                next_retry = time.monotonic() + self.retry_s

    async def drain(self) -> None:
        """Sends (or spools) everything still queued; used when the service stops."""
        while not self.queue.empty():
            await self._send_or_spool(self.queue.get_nowait())

    async def flush_spool(self) -> int:
        """Sends spooled traces, oldest first, until one fails; returns how many were sent."""
        sent = 0
        for path in self.spool_files():
            try:
                trace = Trace.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                log.error("spooled trace %s cannot be read (%s); kept as %s.bad", path.name, exc, path.name)
                path.rename(path.with_name(path.name + ".bad"))
                continue
            if not await self._send(trace):
                break
            path.unlink(missing_ok=True)
            sent += 1
        if sent:
            log.info("sent %d spooled traces; %d still wait", sent, len(self.spool_files()))
        return sent

    async def _send_or_spool(self, trace: Trace) -> None:
        try:
            check_trace_size(trace, self.max_trace_bytes)
        except TraceTooLarge as exc:
            await asyncio.to_thread(keep_rejected, self.rejected_home, trace.id, trace, str(exc))
            return
        # while older traces wait on disk, a new one waits behind them
        if self.spool_files():
            self._spool(trace)
            return
        try:
            sent = await self._send(trace)
        except asyncio.CancelledError:
            self._spool(trace)
            raise
        if not sent:
            self._spool(trace)

    async def _send(self, trace: Trace) -> bool:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await self.send(trace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "trace %s not published (%s: %s); it waits in %s", trace.id, type(exc).__name__, exc, self.spool_dir
            )
            return False
        self.published += 1
        return True

    def _spool(self, trace: Trace) -> None:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", trace.id)[:150]
        path = self.spool_dir / f"{time.time_ns():020d}-{name}.json"
        try:
            write_text_atomically(path, trace.model_dump_json())
        except OSError:
            log.exception("trace %s could not be spooled to %s and is lost", trace.id, self.spool_dir)
            return
        self.spooled += 1


async def stop_publisher(publisher: TracePublisher, task: asyncio.Task[None]) -> None:
    """Stops the sender, then sends or spools what is still queued."""
    # the flag ends the loop even when a cancel lands as a wait completes (asyncio.wait_for drops it on 3.11)
    publisher.stopping = True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await publisher.drain()
