"""The Trainer servicer over a real JobQueue: a late StreamProgress caller sees where a running job stands."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import grpc

from tracewheel.core.grpc_server import GrpcServer
from tracewheel.trainer.jobs import Job, JobQueue, JobStore
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.train import Progress
from tracewheel.v1 import trainer_pb2, trainer_pb2_grpc


async def test_a_late_progress_stream_starts_at_the_last_report_and_jobs_carry_their_times(tmp_path: Path) -> None:
    reported, release = threading.Event(), threading.Event()

    def runner(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], object]) -> str:
        progress(Progress(3, 10, 1.25, 100.0, 7.0))
        reported.set()
        release.wait(30)
        return f"{tmp_path}/{job.id}"

    queue = JobQueue(JobStore(tmp_path / "jobs.json"), runner)
    hub = ProgressHub(asyncio.get_running_loop())
    queue.add_listener(hub.on_job)
    server = GrpcServer(["tracewheel.v1.Trainer"])
    trainer_pb2_grpc.add_TrainerServicer_to_server(TrainerServicer(queue, hub, "base"), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    job = queue.submit("v1", "/data/v1", "base")
    worker = asyncio.create_task(asyncio.to_thread(queue.run_next))
    try:
        await asyncio.to_thread(reported.wait, 30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            for _ in range(100):  # the report reaches the hub through the event loop
                call = stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id=job.id))
                first = await call.read()
                call.cancel()
                if first.step == 3:
                    break
                await asyncio.sleep(0.05)
            assert (first.step, first.total_steps, first.loss, first.phase) == (3, 10, 1.25, "training")
            (listed,) = (await stub.ListJobs(trainer_pb2.ListJobsRequest())).jobs
            assert abs(listed.created_at.ToNanoseconds() / 1e9 - job.created_at) < 1e-3
            assert listed.updated_at.ToSeconds() >= listed.created_at.ToSeconds()
            release.set()
            await worker
            done = [p async for p in stub.StreamProgress(trainer_pb2.StreamProgressRequest(job_id=job.id))]
            assert [p.phase for p in done] == ["done"]
    finally:
        release.set()
        await worker
        await server.stop(0)
