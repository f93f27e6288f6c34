"""gRPC Trainer servicer: translates between trainer.proto and the JobQueue (transport only)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from tracewheel.core.errors import InvalidArgument
from tracewheel.trainer.convert import job_detail_to_proto, job_to_proto, progress_to_proto
from tracewheel.trainer.data import load_training_data
from tracewheel.trainer.job_detail import read_job_detail
from tracewheel.trainer.jobs import FINAL_STATES, Job, JobQueue
from tracewheel.trainer.train import Progress
from tracewheel.v1 import events_pb2, trainer_pb2, trainer_pb2_grpc


class ProgressHub:
    """Fans job updates from the worker thread out to StreamProgress calls on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._subscribers: dict[str, set[asyncio.Queue[events_pb2.TrainingProgress | None]]] = defaultdict(set)
        self._latest: dict[str, events_pb2.TrainingProgress] = {}  # an unfinished job's last report

    def on_job(self, job: Job, progress: Progress | None) -> None:  # a JobQueue listener (any thread)
        message = progress_to_proto(job, progress)
        final = progress is None and job.state in FINAL_STATES
        self._loop.call_soon_threadsafe(self._deliver, job.id, message, final)

    def _deliver(self, job_id: str, message: events_pb2.TrainingProgress, final: bool) -> None:
        if final:
            self._latest.pop(job_id, None)
        else:
            self._latest[job_id] = message
        for queue in self._subscribers.get(job_id, ()):
            queue.put_nowait(message)
            if final:
                queue.put_nowait(None)

    def where(self, job: Job) -> events_pb2.TrainingProgress:
        """Where `job` stands: its last progress report while it is unfinished, else its phase."""
        if job.state in FINAL_STATES:
            return progress_to_proto(job, None)
        return self._latest.get(job.id) or progress_to_proto(job, None)

    async def stream(self, job_id: str, get_job: Callable[[str], Job]) -> AsyncIterator[events_pb2.TrainingProgress]:
        """Where the job stands (its last progress report while it runs), then every update until
        it reaches a final state."""
        queue: asyncio.Queue[events_pb2.TrainingProgress | None] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        try:
            job = get_job(job_id)  # read after subscribing, so no update falls in between
            yield self.where(job)
            if job.state in FINAL_STATES:
                return
            while (message := await queue.get()) is not None:
                yield message
        finally:
            self._subscribers[job_id].discard(queue)


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    """The Trainer service over a job queue; `adapters_dir` holds the jobs' folders (their loss
    curves); None: only a finished job's folder is known, beside its adapter."""

    def __init__(
        self, queue: JobQueue, hub: ProgressHub, default_base_model: str, adapters_dir: Path | None = None
    ) -> None:
        self._queue = queue
        self._hub = hub
        self._default_base_model = default_base_model
        self._adapters_dir = adapters_dir

    async def StartJob(
        self, request: trainer_pb2.StartJobRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.Job:
        if not request.dataset_path:
            raise InvalidArgument("dataset_path is required")
        # validate now so a bad dataset is an INVALID_ARGUMENT for the caller, not a FAILED job later
        data = await asyncio.to_thread(load_training_data, Path(request.dataset_path))
        version = request.dataset_version or data.manifest.version
        if not version:
            raise InvalidArgument("dataset_version is required (the manifest has none)")
        base_model = data.manifest.base_model or self._default_base_model
        job = await asyncio.to_thread(self._queue.submit, version, request.dataset_path, base_model, request.eval_suite)
        return job_to_proto(job)

    async def CancelJob(
        self, request: trainer_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.Job:
        return job_to_proto(await asyncio.to_thread(self._queue.cancel, request.job_id))

    async def ListJobs(
        self, request: trainer_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.ListJobsResponse:
        return trainer_pb2.ListJobsResponse(jobs=[job_to_proto(job) for job in self._queue.list()])

    async def GetJob(
        self, request: trainer_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> trainer_pb2.JobDetail:
        job = self._queue.get(request.job_id)
        detail = await asyncio.to_thread(read_job_detail, job, self._adapters_dir)
        return job_detail_to_proto(detail, self._hub.where(job))

    async def StreamProgress(
        self, request: trainer_pb2.StreamProgressRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.TrainingProgress]:
        async for message in self._hub.stream(request.job_id, self._queue.get):
            yield message
