"""NATS wiring of the dataset service: ingest `traces.v1.completed`, publish `datasets.v1.built`.

- Consumer `dataset-ingest` stores each trace (`TraceStore.ingest` is idempotent by id, so a
  redelivery is a no-op); an invalid trace raises `PoisonMessage` and is dead-lettered. A trace
  over the size limit is also written to `<home>/rejected/` for a person (core.trace_size).
- After an ingest that added an approved trace, the `BuildTrigger` waits until ingests have
  been quiet for `build_debounce_s` (one build per burst), then builds when at least
  `build_threshold` approved traces are new since the last build.
- A build is recorded in the store before its event is published (`Nats-Msg-Id`
  `dataset:<version>`). On start the latest recorded build is published again: if the service
  died between recording and publishing, the event goes out now; otherwise the Msg-Id dedups it
  inside the stream's window, and consumers treat a known version as a no-op anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tracewheel.core.errors import TraceValidationError
from tracewheel.core.events import SUBJECT_DATASET_BUILT, SUBJECT_TRACE_COMPLETED, ConsumerSpec, PoisonMessage, publish
from tracewheel.core.metrics import BUILDS, TRACES_INGESTED, TRACES_REFUSED
from tracewheel.core.trace import Trace
from tracewheel.core.trace_proto import trace_from_proto
from tracewheel.core.trace_size import TraceTooLarge, keep_rejected
from tracewheel.dataset.build import BuildResult, DatasetBuilder, check_threshold
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.proto_convert import dataset_built_event
from tracewheel.dataset.records import BuildRecord, IngestResult
from tracewheel.dataset.store import TraceStore
from tracewheel.v1 import events_pb2

logger = logging.getLogger(__name__)

INGEST_CONSUMER = ConsumerSpec(
    stream="TRACES",
    subject=SUBJECT_TRACE_COMPLETED,
    durable="dataset-ingest",
    payload_type=events_pb2.TraceCompleted,
)


class DatasetEvents:
    """Ingests traces, builds (on the trigger or on request) and publishes each new build once."""

    def __init__(
        self,
        js: JetStreamContext,
        store: TraceStore,
        builder: DatasetBuilder,
        *,
        threshold: int,
        debounce_s: float,
        rejected_home: Path | None = None,
    ) -> None:
        self.js = js
        self.rejected_home = rejected_home  # where refused traces are kept (None: dead-lettered only)
        self.store = store
        self.builder = builder
        self.threshold = threshold
        self.trigger = BuildTrigger(self._triggered_build, debounce_s)
        self._build_lock = asyncio.Lock()

    async def handle_trace(self, payload: events_pb2.TraceCompleted, _msg: Msg) -> None:
        """Stores one trace; a malformed one is poison (it would never succeed)."""
        try:
            trace = trace_from_proto(payload.trace)
            await self.ingest(trace, path="nats")
        except TraceValidationError as exc:
            raise PoisonMessage(str(exc)) from exc
        except TraceTooLarge as exc:
            if self.rejected_home is not None:
                await asyncio.to_thread(keep_rejected, self.rejected_home, trace.id, trace, str(exc))
            raise PoisonMessage(str(exc)) from exc

    async def ingest(self, trace: Trace, path: str = "grpc") -> IngestResult:
        """Stores a trace (idempotent) and pokes the build trigger when it added an approved one; `path`
        labels the ingest metrics.

        Raises:
            TraceValidationError: the trace is malformed; nothing is stored.
            TraceTooLarge: the trace is over the size limit; nothing is stored.
        """
        try:
            result = await asyncio.to_thread(self.store.ingest, trace)
        except (TraceValidationError, TraceTooLarge):
            TRACES_REFUSED.labels(path).inc()
            raise
        TRACES_INGESTED.labels(path).inc()
        if result.created and result.status == CurationStatus.APPROVED:
            self.trigger.poke()
        return result

    async def build(self, *, force: bool) -> BuildResult:
        """Builds now (one build at a time) and publishes the event of a new build.

        Raises:
            FailedPrecondition: below the threshold without `force`, or nothing to build.
        """
        async with self._build_lock:
            if not force:
                await asyncio.to_thread(check_threshold, self.store, self.threshold)
            try:
                result = await asyncio.to_thread(self.builder.build)
            except Exception:
                BUILDS.labels("failed").inc()
                raise
            BUILDS.labels("created" if result.created else "unchanged").inc()
            if result.created:
                await self.publish_built(result.record)
            return result

    async def _waiting(self) -> int:
        """Approved traces not in the last build."""
        return len(await asyncio.to_thread(self.store.approved_since_last_build))

    async def _triggered_build(self) -> None:
        if await self._waiting() >= self.threshold:
            await self.build(force=True)

    async def publish_built(self, record: BuildRecord) -> bool:
        published = await publish(
            self.js, SUBJECT_DATASET_BUILT, dataset_built_event(record), f"dataset:{record.version}"
        )
        logger.info("published %s for %s (%s)", SUBJECT_DATASET_BUILT, record.version, "new" if published else "dup")
        return published

    async def resume_trigger(self) -> None:
        """Pokes the build trigger when approved traces wait for a build (on start).

        The trigger's debounce lives in memory: a service killed after storing a burst of traces
        but before building would otherwise wait for the next trace to arrive.
        """
        waiting = await self._waiting()
        if waiting >= self.threshold:
            logger.info("%d approved traces wait for a build; building after the debounce", waiting)
            self.trigger.poke()

    async def republish_latest(self) -> None:
        """Publishes the latest recorded build again, for a crash between recording and publishing."""
        builds = await asyncio.to_thread(self.store.list_builds)
        if builds:
            await self.publish_built(builds[0])


class BuildTrigger:
    """Runs `action` once per burst of pokes, after `debounce_s` without a poke."""

    def __init__(self, action: Callable[[], Awaitable[None]], debounce_s: float) -> None:
        self.action = action
        self.debounce_s = debounce_s
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._poked.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="dataset-build-trigger")

    async def _quiet(self) -> None:
        while True:
            self._poked.clear()
            try:
                await asyncio.wait_for(self._poked.wait(), self.debounce_s)
            except TimeoutError:
                return

    async def _run(self) -> None:
        while True:
            await self._quiet()
            try:
                await self.action()
            except Exception:
                logger.exception("triggered dataset build failed; the next approved trace retries it")
            if not self._poked.is_set():
                return

    async def wait_idle(self) -> None:
        """Returns when no burst is pending or being built (for tests and shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
