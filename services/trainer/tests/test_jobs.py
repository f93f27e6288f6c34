"""The job queue state machine: supersede, cancel, fail, crash recovery (no training: a fake runner)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tracewheel.core.errors import FailedPrecondition, NotFound
from tracewheel.trainer.jobs import Job, JobQueue, JobState, JobStore
from tracewheel.trainer.train import Progress, TrainingCancelled


def succeed(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
    progress(Progress(1, 1, 0.5, 10.0, 0.0))
    return f"/adapters/{job.id}/adapter"


def queue_at(tmp_path: Path, runner=succeed) -> JobQueue:  # type: ignore[no-untyped-def]
    return JobQueue(JobStore(tmp_path / "jobs.json"), runner)


def test_job_runs_to_success_and_is_persisted(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    seen: list[tuple[JobState, Progress | None]] = []
    queue.add_listener(lambda job, progress: seen.append((job.state, progress)))
    job = queue.submit("v1", "/data/v1", "base")

    done = queue.run_next()

    assert done is not None and done.state == JobState.SUCCEEDED and done.adapter_path.endswith("adapter")
    assert [state for state, _ in seen] == [JobState.QUEUED, JobState.RUNNING, JobState.RUNNING, JobState.SUCCEEDED]
    assert seen[2][1] is not None and seen[2][1].loss == 0.5
    assert queue_at(tmp_path).get(job.id).state == JobState.SUCCEEDED  # read back from disk
    assert queue.run_next() is None


def test_resubmitting_a_dataset_is_a_no_op(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    first = queue.submit("v1", "/data/v1", "base")
    assert queue.submit("v1", "/data/v1", "base").id == first.id
    assert len(queue.list()) == 1


def test_newer_dataset_supersedes_queued_not_running(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    started, release = threading.Event(), threading.Event()

    def blocking(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        started.set()
        release.wait(10)
        return "adapter"

    queue = queue_at(tmp_path, blocking)
    running = queue.submit("v1", "/d/1", "base")
    worker = threading.Thread(target=queue.run_next)
    worker.start()
    assert started.wait(10)
    queued = queue.submit("v2", "/d/2", "base")
    newest = queue.submit("v3", "/d/3", "base")
    release.set()
    worker.join(10)

    states = {job.id: job.state for job in queue.list()}
    assert states == {running.id: JobState.SUCCEEDED, queued.id: JobState.SUPERSEDED, newest.id: JobState.QUEUED}
    assert "superseded by dataset v3" in queue.get(queued.id).error


def test_cancel_queued_and_running(tmp_path: Path) -> None:
    started = threading.Event()

    def until_stopped(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        started.set()
        while not should_stop():
            started.wait(0.01)
        raise TrainingCancelled("cancelled at step 3")

    queue = queue_at(tmp_path, until_stopped)
    running = queue.submit("v1", "/d/1", "base")
    worker = threading.Thread(target=queue.run_next)
    worker.start()
    assert started.wait(10)
    assert queue.cancel(running.id).state == JobState.RUNNING  # stops at its next step
    worker.join(10)
    assert queue.get(running.id).state == JobState.CANCELLED

    queued = queue.submit("v2", "/d/2", "base")
    assert queue.cancel(queued.id).state == JobState.CANCELLED
    with pytest.raises(FailedPrecondition, match="already finished"):
        queue.cancel(queued.id)
    with pytest.raises(NotFound):
        queue.cancel("nope")


def test_failure_marks_the_job_failed_with_the_reason(tmp_path: Path) -> None:
    def oom(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        raise MemoryError("CUDA out of memory")

    queue = queue_at(tmp_path, oom)
    queue.submit("v1", "/d/1", "base")
    failed = queue.run_next()
    assert failed is not None and failed.state == JobState.FAILED and "MemoryError: CUDA out of memory" in failed.error
    queue.submit("v2", "/d/2", "base")  # the queue keeps working
    assert queue.run_next() is not None


def test_a_running_job_found_after_a_crash_runs_first(tmp_path: Path) -> None:
    crashed = queue_at(tmp_path)
    job = crashed.submit("v1", "/d/1", "base")
    crashed._set(job, state=JobState.RUNNING)  # what the file holds after kill -9 mid-training
    crashed.submit("v2", "/d/2", "base")

    restarted = queue_at(tmp_path)
    first = restarted.run_next()
    assert first is not None and first.id == job.id and first.state == JobState.SUCCEEDED


def test_shutdown_leaves_the_running_job_running(tmp_path: Path) -> None:
    def until_stopped(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        queue.close()
        assert should_stop()
        raise TrainingCancelled("stopped")

    queue = queue_at(tmp_path, until_stopped)
    job = queue.submit("v1", "/d/1", "base")
    queue.run_next()
    assert queue_at(tmp_path).get(job.id).state == JobState.RUNNING
    assert queue.wait_for_work(0.01) is False


def test_job_states_are_counted_for_prometheus(tmp_path: Path) -> None:
    def count(state: JobState) -> float:
        return REGISTRY.get_sample_value("tracewheel_training_jobs_total", {"state": str(state)}) or 0.0

    before = {state: count(state) for state in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED)}
    queue = queue_at(tmp_path)
    queue.submit("v1", "/data/v1", "base")
    queue.run_next()
    assert {state: count(state) - n for state, n in before.items()} == {
        JobState.QUEUED: 1,
        JobState.RUNNING: 1,
        JobState.SUCCEEDED: 1,
    }
