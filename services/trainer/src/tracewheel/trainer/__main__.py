"""Entrypoint: `python -m tracewheel.trainer`: gRPC server, NATS consumer, one training worker thread.

With TW_TRAINER_RUNNER=kubernetes the worker runs each job as a Kubernetes Job (k8s_runner.py),
after the start-up checks of k8s_setup.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from nats.aio.client import Client as NatsClient

from tracewheel.core.events import connect, ensure_streams, run_consumer
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.nats_auth import declared_streams
from tracewheel.core.service import Cleanup, service_main
from tracewheel.trainer.config import TrainerSettings
from tracewheel.trainer.events import (
    DATASET_CONSUMER,
    DEPLOYED_CONSUMER,
    EventPublisher,
    dataset_built_handler,
    model_deployed_handler,
)
from tracewheel.trainer.export import export_on_success
from tracewheel.trainer.jobs import Job, JobQueue, JobStore, RemoteTraining, training_runner
from tracewheel.trainer.k8s_setup import start_kubernetes_training
from tracewheel.trainer.recipe import Recipe, load_recipe
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.warm_start import DeploymentLog, warm_start_adapter
from tracewheel.v1 import trainer_pb2_grpc

log = logging.getLogger(__name__)


def _job_queue(
    settings: TrainerSettings, recipe: Recipe, store: JobStore, remote: RemoteTraining | None
) -> tuple[JobQueue, DeploymentLog]:
    """The job queue with its runner (local or `remote`) and warm starts from the deployed adapter."""
    runner = training_runner(
        settings.resolved_adapters_dir(),
        recipe,
        settings.resolve_base_model,
        settings.eval_target(),
        isolate=settings.isolate,
        recipe_path=settings.recipe_path,
        remote=remote,
    )
    if recipe.export_merged:
        runner = export_on_success(runner)
    deployments = DeploymentLog(settings.resolved_state_dir() / "deployments.json")

    def warm_start(job: Job, jobs: list[Job]) -> str:
        if recipe.warm_start_epochs is None:
            return ""
        return warm_start_adapter(job, deployments.adapter_for(settings.deploy_alias), jobs)

    return JobQueue(store, runner, warm_start), deployments


async def _start_consumers(
    settings: TrainerSettings, queue: JobQueue, deployments: DeploymentLog, stop: asyncio.Event
) -> tuple[NatsClient | None, list[asyncio.Task[None]]]:
    """With events on: the NATS client (job events published) and the dataset-built and deployed consumers."""
    consumers: list[asyncio.Task[None]] = []
    if not settings.events:
        return None, consumers
    client, js = await connect(settings.nats_url, "trainer", settings)
    await ensure_streams(js, declared_streams(settings.nats_user), settings.nats_stream_replicas)
    queue.add_listener(EventPublisher(client, js, asyncio.get_running_loop()).on_job)
    # a build is trusted only inside the dataset service's folder
    dataset_built = dataset_built_handler(queue, settings.resolved_datasets_dir())
    consumers.append(asyncio.create_task(run_consumer(js, DATASET_CONSUMER, dataset_built, stop)))
    deployed = model_deployed_handler(deployments)
    consumers.append(asyncio.create_task(run_consumer(js, DEPLOYED_CONSUMER, deployed, stop)))
    return client, consumers


async def setup(settings: TrainerSettings, server: GrpcServer) -> Cleanup:
    loop = asyncio.get_running_loop()
    recipe = load_recipe(settings.recipe_path)
    store = JobStore(settings.resolved_state_dir() / "jobs.json")
    remote = None
    if settings.runner == "kubernetes":
        jobs = list(store.load().values())
        remote = await asyncio.to_thread(start_kubernetes_training, settings, recipe, jobs)
    queue, deployments = _job_queue(settings, recipe, store, remote)
    hub = ProgressHub(loop)
    queue.add_listener(hub.on_job)
    default_base = str(settings.base_model_dir or "")
    servicer = TrainerServicer(queue, hub, default_base, settings.resolved_adapters_dir())
    trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server.server)

    stop = asyncio.Event()
    client, consumers = await _start_consumers(settings, queue, deployments, stop)
    # training blocks for minutes: it runs in its own thread, the event loop stays responsive
    worker = threading.Thread(target=queue.work_forever, name="trainer-worker", daemon=True)
    worker.start()

    async def cleanup() -> None:
        stop.set()
        queue.close()  # a running job stops at its next step and stays RUNNING, to resume at the next start
        for consumer in consumers:
            try:
                await consumer
            except TimeoutError:  # core's run_consumer can let a fetch timeout escape while stopping
                log.warning("a consumer stopped with a fetch timeout", exc_info=True)
        await asyncio.to_thread(worker.join, 60)
        if client is not None:
            await client.close()

    return cleanup


def main() -> None:
    service_main("trainer", TrainerSettings, ["tracewheel.v1.Trainer"], setup)


if __name__ == "__main__":
    main()
