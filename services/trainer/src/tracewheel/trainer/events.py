"""NATS wiring: datasets.v1.built -> a queued job; job updates -> trainer.v1.progress and models.v1.trained;
models.v1.deployed -> the deployment log that warm starts read (warm_start.py).

The `trainer` durable consumer acks a DatasetBuilt only after `JobQueue.submit` has written the
job to disk; a redelivery finds the job by dataset version and is a no-op. A build whose path lies
outside the datasets folder (the dataset service's artifacts) is refused: dead-lettered, no job. `trainer-deployed`
acks a ModelDeployed once it is recorded; a redelivery records the same thing again.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tracewheel.core.artifacts import path_inside
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.events import (
    SUBJECT_DATASET_BUILT,
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    SUBJECT_TRAINING_PROGRESS,
    ConsumerSpec,
    Handler,
    PoisonMessage,
    publish,
)
from tracewheel.trainer.convert import metrics_proto, progress_to_proto
from tracewheel.trainer.jobs import Job, JobQueue, JobState
from tracewheel.trainer.train import Progress
from tracewheel.trainer.warm_start import DeploymentLog
from tracewheel.v1 import events_pb2

log = logging.getLogger(__name__)

DATASET_CONSUMER = ConsumerSpec("DATASETS", SUBJECT_DATASET_BUILT, "trainer", events_pb2.DatasetBuilt)
DEPLOYED_CONSUMER = ConsumerSpec("MODELS", SUBJECT_MODEL_DEPLOYED, "trainer-deployed", events_pb2.ModelDeployed)


def dataset_built_handler(queue: JobQueue, datasets_dir: Path | None = None) -> Handler[events_pb2.DatasetBuilt]:
    """The consumer's handler: validates the event and queues a job (durably) before the ack. With
    `datasets_dir`, a build must lie inside it (symlinks followed), else it is poison."""

    async def handle(event: events_pb2.DatasetBuilt, msg: Msg) -> None:
        if not event.version or not event.path:
            raise PoisonMessage(f"DatasetBuilt needs version and path (got version={event.version!r})")
        if datasets_dir is not None:
            try:
                path_inside(datasets_dir, event.path, "dataset")
            except InvalidArgument as exc:
                log.error("refused DatasetBuilt %s: %s", event.version, exc)
                raise PoisonMessage(f"DatasetBuilt {event.version!r} refused: {exc}") from exc
        job = await asyncio.to_thread(queue.submit, event.version, event.path, event.base_model)
        log.info("dataset %s -> job %s (%s)", event.version, job.id, job.state)

    return handle


def model_deployed_handler(deployments: DeploymentLog) -> Handler[events_pb2.ModelDeployed]:
    """The consumer's handler: records which adapter the alias serves now, before the ack."""

    async def handle(event: events_pb2.ModelDeployed, msg: Msg) -> None:
        if not event.alias:
            raise PoisonMessage("ModelDeployed needs an alias")
        await asyncio.to_thread(deployments.record, event.alias, event.adapter_name)
        log.info("alias %s serves %s", event.alias, event.adapter_name or "the base model")

    return handle


def model_trained(job: Job) -> events_pb2.ModelTrained:
    trained_at = Timestamp()
    trained_at.FromSeconds(int(job.updated_at))
    return events_pb2.ModelTrained(
        adapter_name=job.id,
        adapter_path=job.adapter_path,
        base_model=job.base_model,
        dataset_version=job.dataset_version,
        job_id=job.id,
        trained_at=trained_at,
        metrics=metrics_proto(job.metrics),
        baseline_metrics=metrics_proto(job.baseline_metrics),
    )


class EventPublisher:
    """A JobQueue listener (called in the worker thread) that publishes on the event loop."""

    def __init__(self, client: NatsClient, js: JetStreamContext, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._js = js
        self._loop = loop

    def on_job(self, job: Job, progress: Progress | None) -> None:
        future = asyncio.run_coroutine_threadsafe(self._publish(job, progress), self._loop)
        if progress is None and job.state == JobState.SUCCEEDED:
            future.result(timeout=30)  # the job is only reported done once the event is out

    async def _publish(self, job: Job, progress: Progress | None) -> None:
        try:
            await self._client.publish(SUBJECT_TRAINING_PROGRESS, progress_to_proto(job, progress).SerializeToString())
        except Exception:  # progress is best effort (core NATS)
            log.warning("could not publish progress of %s", job.id, exc_info=True)
        if progress is None and job.state == JobState.SUCCEEDED:
            await publish(self._js, SUBJECT_MODEL_TRAINED, model_trained(job), f"trained:{job.id}")
            log.info("published %s for %s", SUBJECT_MODEL_TRAINED, job.id)
