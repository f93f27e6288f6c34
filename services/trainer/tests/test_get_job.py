"""GetJob over a real TrainerServicer and JobQueue: a running job's recipe, progress and loss curve."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.trainer.jobs import Job, JobQueue, JobStore
from tracewheel.trainer.loss_log import append_loss_line
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.train import Progress
from tracewheel.v1 import trainer_pb2, trainer_pb2_grpc


async def test_get_job_returns_the_running_jobs_curve_recipe_and_progress(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    logged, release = threading.Event(), threading.Event()

    def runner(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], object]) -> str:
        folder = adapters / job.id  # as train() writes it while the job runs
        append_loss_line(folder, {"begin": 0, "recipe": {"lora_r": 4, "device": "cpu"}})
        append_loss_line(folder, {"step": 1, "loss": 2.5, "learning_rate": 1e-3})
        append_loss_line(folder, {"step": 2, "loss": 2.0, "learning_rate": 9e-4})
        append_loss_line(folder, {"step": 2, "eval_loss": 2.2})
        progress(Progress(2, 10, 2.0, 50.0, 8.0))
        logged.set()
        release.wait(30)
        return str(folder / "adapter")

    queue = JobQueue(JobStore(tmp_path / "jobs.json"), runner)
    hub = ProgressHub(asyncio.get_running_loop())
    queue.add_listener(hub.on_job)
    server = GrpcServer(["tracewheel.v1.Trainer"])
    trainer_pb2_grpc.add_TrainerServicer_to_server(TrainerServicer(queue, hub, "base", adapters), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    job = queue.submit("v1", "/data/v1", "base")
    worker = asyncio.create_task(asyncio.to_thread(queue.run_next))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            await asyncio.to_thread(logged.wait, 30)
            for _ in range(100):  # the report reaches the hub through the event loop
                detail = await stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.id))
                if detail.progress.step == 2:
                    break
                await asyncio.sleep(0.05)

            assert detail.job.id == job.id and detail.job.state == trainer_pb2.JOB_STATE_RUNNING
            assert (detail.progress.step, detail.progress.total_steps, detail.progress.phase) == (2, 10, "training")
            assert json.loads(detail.recipe_json) == {"lora_r": 4, "device": "cpu"}
            assert [(p.step, p.loss) for p in detail.loss_curve] == [(1, 2.5), (2, 2.0)]
            assert not detail.loss_curve[0].HasField("eval_loss") and detail.loss_curve[1].eval_loss == 2.2

            release.set()
            await worker
            done = await stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.id))
            assert done.job.state == trainer_pb2.JOB_STATE_SUCCEEDED and done.progress.phase == "done"
            assert len(done.loss_curve) == 2

            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetJob(trainer_pb2.GetJobRequest(job_id="agent-nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND and "agent-nope" in missing.value.details()
    finally:
        release.set()
        await worker
        await server.stop(0)


async def test_a_queued_job_has_no_recipe_and_no_curve_yet(tmp_path: Path) -> None:
    queue = JobQueue(JobStore(tmp_path / "jobs.json"), lambda job, progress, stop: "")
    hub = ProgressHub(asyncio.get_running_loop())
    server = GrpcServer(["tracewheel.v1.Trainer"])
    servicer = TrainerServicer(queue, hub, "base", tmp_path / "adapters")
    trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    job = queue.submit("v1", "/data/v1", "base")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            detail = await trainer_pb2_grpc.TrainerStub(channel).GetJob(trainer_pb2.GetJobRequest(job_id=job.id))
        assert detail.job.state == trainer_pb2.JOB_STATE_QUEUED and detail.progress.phase == "queued"
        assert detail.recipe_json == "" and len(detail.loss_curve) == 0
    finally:
        await server.stop(0)
