"""Client commands against the services' own servicers on real gRPC servers: `--json` is one
document on stdout, failures are one stderr line with their exit code, Ctrl-C cancels on the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.natsserver import free_port
from tracewheel.trainer.jobs import Job, JobQueue, JobState, JobStore
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.train import Progress, TrainingCancelled
from tracewheel.v1 import dataset_pb2_grpc, trainer_pb2_grpc

from .cli_services import BackgroundLoop, built_dataset, dataset_service, run_cli, serve


def one_line(err: str) -> str:
    (line,) = err.strip().splitlines()
    assert "Traceback" not in line
    return line


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.02)


def test_a_service_that_is_down_is_exit_3_and_says_what_to_do(home: Path, capsys) -> None:
    address = f"127.0.0.1:{free_port()}"
    ran = run_cli(capsys, "traces", "list", "--address", address, "--json")
    assert ran.code == 3 and ran.out == ""
    line = one_line(ran.err)
    assert f"the dataset service at {address} is unreachable" in line
    assert "tracewheel up" in line and "TRACEWHEEL_DATASET_GRPC" in line


def test_a_missing_token_is_exit_3_and_names_the_variable(
    background: BackgroundLoop, home: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, store = dataset_service(tmp_path)
    register = lambda server: dataset_pb2_grpc.add_DatasetServicer_to_server(servicer, server)  # noqa: E731
    server, address = background.run(serve("Dataset", register, token="s3cret"))
    try:
        refused = run_cli(capsys, "traces", "list", "--address", address)
        monkeypatch.setenv("TRACEWHEEL_TOKEN", "s3cret")
        allowed = run_cli(capsys, "traces", "list", "--address", address, "--json")
    finally:
        background.run(server.stop(0))
        store.close()
    assert refused.code == 3 and refused.out == ""
    line = one_line(refused.err)
    assert "refused the call: missing or wrong bearer token" in line and "TRACEWHEEL_TOKEN" in line
    assert allowed.code == 0 and json.loads(allowed.out) == []


def test_status_without_a_stack_answers_no(home: Path, capsys) -> None:
    ran = run_cli(capsys, "status", "--json")
    assert ran.code == 1 and json.loads(ran.out) == {"home": str(home), "running": False}


class Trainer:
    """The trainer's servicer over a real job queue whose runner `run` the test scripts."""

    def __init__(self, background: BackgroundLoop, home: Path) -> None:
        self.run: Callable[[Job, Callable[[Progress], None], Callable[[], bool]], str] = lambda *_: ""
        self.queue = JobQueue(JobStore(home / "jobs.json"), lambda *args: self.run(*args))
        self.hub: ProgressHub | None = None
        self.background = background
        self.server, self.address = background.run(self._serve())
        self.worker = threading.Thread(target=self.queue.work_forever, daemon=True)
        self.worker.start()

    async def _serve(self) -> Any:
        self.hub = ProgressHub(asyncio.get_running_loop())
        self.queue.add_listener(self.hub.on_job)
        servicer = TrainerServicer(self.queue, self.hub, "")
        return await serve("Trainer", lambda server: trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server))

    def followed(self, job_id: str) -> bool:
        """Whether a StreamProgress call follows the job (the CLI is waiting on it)."""
        return bool(self.hub is not None and self.hub._subscribers.get(job_id))

    def consumed(self, job_id: str) -> bool:
        """Whether the StreamProgress call took every update sent so far (so it is past reading
        the job's state, and a job that ends now still sends it the updates before its end)."""
        self.background.run(asyncio.sleep(0))  # the hub delivers by callbacks queued before this
        assert self.hub is not None
        return self.followed(job_id) and all(queue.empty() for queue in self.hub._subscribers[job_id])

    def close(self) -> None:
        self.queue.close()
        self.worker.join(10)
        self.background.run(self.server.stop(0))


@pytest.fixture
def trainer(background: BackgroundLoop, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    service = Trainer(background, tmp_path)
    monkeypatch.setenv("TRACEWHEEL_TRAINER_GRPC", service.address)
    yield service
    service.close()


def test_train_waits_with_progress_and_prints_the_job(trainer: Trainer, tmp_path: Path, capsys) -> None:
    def three_steps(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        wait_for(lambda: trainer.followed(job.id))
        progress(Progress(1, 3, 1.0, 100.0, 2.0))
        wait_for(lambda: trainer.consumed(job.id))
        for step in (2, 3):
            progress(Progress(step, 3, 1.0 / step, 100.0, 3.0 - step))
        return f"/adapters/{job.id}"

    trainer.run = three_steps
    dataset = built_dataset(tmp_path / "dataset")

    ran = run_cli(capsys, "train", "--dataset-path", str(dataset), "--wait", "--json")

    assert ran.code == 0, ran.err
    job = json.loads(ran.out)
    assert job["state"] == "succeeded" and job["adapter_path"] == f"/adapters/{job['id']}"
    assert "3/3 steps" in ran.err and "loss 0.333" in ran.err
    listed = run_cli(capsys, "train", "--json")
    assert [j["id"] for j in json.loads(listed.out)] == [job["id"]]


def test_ctrl_c_on_train_wait_cancels_the_job(trainer: Trainer, tmp_path: Path, capsys, sigint_raises) -> None:
    started = threading.Event()

    def until_cancelled(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        wait_for(lambda: trainer.followed(job.id))
        progress(Progress(1, 100, 2.0, 50.0, 99.0))
        started.set()
        while not should_stop():
            started.wait(0.01)
        raise TrainingCancelled("cancelled at step 1")

    trainer.run = until_cancelled
    dataset = built_dataset(tmp_path / "dataset")
    threading.Thread(target=lambda: started.wait(30) and os.kill(os.getpid(), signal.SIGINT), daemon=True).start()

    ran = run_cli(capsys, "train", "--dataset-path", str(dataset), "--wait")

    assert ran.code == 130 and "cancelled training job" in ran.out
    (job,) = trainer.queue.list()
    wait_for(lambda: trainer.queue.get(job.id).state == JobState.CANCELLED)


def test_a_missing_input_file_is_a_usage_error_in_one_line(home: Path, capsys) -> None:
    ran = run_cli(capsys, "traces", "import", str(home / "no-such-folder"), "--json")
    assert ran.code == 2 and ran.out == ""
    assert "no-such-folder does not exist" in one_line(ran.err)
