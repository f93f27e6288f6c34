"""A real trainer for the jobs pages' tests: its TrainerServicer over a JobQueue in tmp.

Four jobs, one per dataset version, run by a runner that writes each job's loss log the way
training does (`loss_log.append_loss_line`, into `<adapters>/<job id>/loss.jsonl`):
- `ds-done` succeeded and was evaluated; its log has a run cut after step 6 and resumed from 4;
- `ds-broken` failed with hostile text in its error;
- `ds-live` is running: it logged steps 1-3 and reported step 3 of 10, and holds until released
  (finishing) or cancelled (`should_stop`); each `advance` logs and reports one more step;
- `ds-waiting` is queued behind it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tracewheel.core.evaluation import EvalResult
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.trainer.jobs import Job, JobQueue, JobStore, RunOutput
from tracewheel.trainer.loss_log import append_loss_line
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.train import ADAPTER, Progress, TrainingCancelled
from tracewheel.v1 import trainer_pb2_grpc

HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
SUITE = "shop:heldout"
RECIPE = {"lora_r": 4, "device": "cpu", "optim": "adamw_torch", "target_modules": ["q_proj", "v_proj"]}


def _log_done_run(folder: Path) -> None:
    append_loss_line(folder, {"begin": 0, "recipe": RECIPE})
    for step in range(1, 7):
        append_loss_line(folder, {"step": step, "loss": 3.0 - 0.2 * step, "learning_rate": 1e-3})
    append_loss_line(folder, {"step": 4, "eval_loss": 2.6})
    append_loss_line(folder, {"begin": 4, "recipe": RECIPE})  # killed after 6, resumed from checkpoint-4
    for step in range(5, 9):
        append_loss_line(folder, {"step": step, "loss": 2.0 - 0.1 * step, "learning_rate": 5e-4})
    append_loss_line(folder, {"step": 8, "eval_loss": 1.4})


class StagedRunner:
    """Runs each job as its dataset version says (module docstring)."""

    def __init__(self, adapters: Path) -> None:
        self.adapters = adapters
        self.live = threading.Event()  # ds-live logged its steps and reported
        self.advance = threading.Event()  # ds-live: log and report the next step
        self.release = threading.Event()

    def __call__(self, job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], object]) -> RunOutput:
        folder = self.adapters / job.id
        if job.dataset_version == "ds-broken":
            raise RuntimeError(f"the dataset is broken: {HOSTILE}")
        if job.dataset_version == "ds-done":
            _log_done_run(folder)
            adapter = EvalResult(model=job.id, suite=SUITE, tasks=10, success_rate=0.6)
            base = EvalResult(model="tiny-base", suite=SUITE, tasks=10, success_rate=0.4)
            return RunOutput(str(folder / ADAPTER), adapter, base)
        append_loss_line(folder, {"begin": 0, "recipe": {**RECIPE, "chat_template": HOSTILE}})
        for step in range(1, 4):
            append_loss_line(folder, {"step": step, "loss": 2.5 - 0.25 * step, "learning_rate": 1e-3})
        progress(Progress(3, 10, 1.75, 120.0, 30.0))
        self.live.set()
        step = 3
        while not self.release.wait(0.05):
            if should_stop():
                raise TrainingCancelled(f"cancelled at step {step}")
            if self.advance.is_set():
                self.advance.clear()
                step += 1
                append_loss_line(folder, {"step": step, "loss": 2.5 - 0.25 * step, "learning_rate": 1e-3})
                progress(Progress(step, 10, 2.5 - 0.25 * step, 120.0, 30.0))
        return RunOutput(str(folder / ADAPTER))


@dataclass
class RunningTrainer:
    queue: JobQueue
    runner: StagedRunner
    address: str
    jobs: dict[str, Job]  # by dataset version


@asynccontextmanager
async def running_trainer(tmp_path: Path) -> AsyncIterator[RunningTrainer]:
    """The trainer with the four jobs in place (ds-live running, ds-waiting queued)."""
    adapters = tmp_path / "adapters"
    runner = StagedRunner(adapters)
    queue = JobQueue(JobStore(tmp_path / "trainer" / "jobs.json"), runner)
    hub = ProgressHub(asyncio.get_running_loop())
    queue.add_listener(hub.on_job)
    server = GrpcServer(["tracewheel.v1.Trainer"])
    trainer_pb2_grpc.add_TrainerServicer_to_server(TrainerServicer(queue, hub, "tiny-base", adapters), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    jobs: dict[str, Job] = {}
    for version in ("ds-done", "ds-broken"):
        jobs[version] = queue.submit(version, f"/datasets/{version}", "tiny-base")
        await asyncio.to_thread(queue.run_next)
    jobs["ds-live"] = queue.submit("ds-live", "/datasets/ds-live", "tiny-base")
    worker = threading.Thread(target=queue.run_next, name="test-trainer-job")
    worker.start()
    await asyncio.to_thread(runner.live.wait, 30)
    jobs["ds-waiting"] = queue.submit("ds-waiting", "/datasets/ds-waiting", "tiny-base")
    try:
        yield RunningTrainer(queue, runner, f"127.0.0.1:{port}", jobs)
    finally:
        runner.release.set()
        await asyncio.to_thread(worker.join, 30)
        await server.stop(0)
