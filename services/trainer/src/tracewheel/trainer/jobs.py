"""Training jobs: a persisted queue and state machine, one job at a time per device (domain).

States: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; QUEUED -> SUPERSEDED (a newer
dataset arrived before it started) | CANCELLED. Every transition is written to a JSON file
(atomic replace) before it takes effect, so after a kill -9 `recover()` finds the RUNNING job
and runs it again first; training resumes from its last checkpoint in the job's output dir.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tracewheel.core.errors import FailedPrecondition, NotFound
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.files import write_json_atomically
from tracewheel.core.metrics import TRAINING_JOBS
from tracewheel.trainer.evaluation import EvalTarget, evaluate_adapter, read_evaluation
from tracewheel.trainer.isolated import train_in_subprocess
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, Progress, TrainingCancelled, train

log = logging.getLogger(__name__)


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.SUPERSEDED})


class StopReason(StrEnum):
    """Why a runner is asked to stop: what `should_stop()` returns (None: keep going)."""

    CANCEL = "cancel"  # the job is cancelled: a Job on the cluster is deleted
    SHUTDOWN = "shutdown"  # the service stops: the job stays RUNNING and resumes (or is adopted) at the next start


@dataclass(frozen=True)
class Job:
    id: str
    dataset_version: str
    dataset_path: str
    base_model: str
    state: JobState = JobState.QUEUED
    error: str = ""
    adapter_path: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    metrics: EvalResult | None = None  # the adapter's held-out evaluation; None: not evaluated
    baseline_metrics: EvalResult | None = None  # its base model's
    init_adapter: str = ""  # the adapter it started from (a warm start, warm_start.py); "": the base model
    eval_suite: str = ""  # the suite its adapter is evaluated and gated on; "": the configured eval_suite


@dataclass(frozen=True)
class RunOutput:
    """What a runner hands back: the adapter and, when evaluated, the figures."""

    adapter_path: str
    metrics: EvalResult | None = None
    baseline_metrics: EvalResult | None = None


def new_job_id(now: float | None = None) -> str:
    """Sortable and readable, doubles as the adapter name: agent-20261121-171500-1a2b3c."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"agent-{stamp}-{uuid.uuid4().hex[:6]}"


class JobStore:
    """Jobs in one JSON file, rewritten atomically (write temp, fsync, rename) on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Job]:
        if not self.path.exists():
            return {}
        rows = json.loads(self.path.read_text(encoding="utf-8"))
        return {row["id"]: _job_from_json(row) for row in rows}

    def save(self, jobs: dict[str, Job]) -> None:
        write_json_atomically(self.path, [_job_to_json(job) for job in jobs.values()])


_RESULTS = ("metrics", "baseline_metrics")


def _job_to_json(job: Job) -> dict[str, object]:
    row = dataclasses.asdict(job)
    row.update(
        {name: None if (value := getattr(job, name)) is None else value.model_dump(mode="json") for name in _RESULTS}
    )
    return row


def _job_from_json(row: dict[str, Any]) -> Job:
    # `{}` is how files written before EvalResult said "not evaluated"
    results = {name: EvalResult.model_validate(row[name]) if row.get(name) else None for name in _RESULTS}
    return Job(**{**row, "state": JobState(row["state"]), **results})


ShouldStop = Callable[[], "StopReason | None"]
# runner(job, progress, should_stop) -> adapter path or RunOutput; raises on failure, TrainingCancelled on cancel
Runner = Callable[[Job, Callable[[Progress], None], ShouldStop], "str | RunOutput"]
# remote(job, job_dir, progress, should_stop) -> the adapter folder: training somewhere else (k8s_runner.py)
RemoteTraining = Callable[[Job, Path, Callable[[Progress], None], ShouldStop], Path]
Listener = Callable[[Job, Progress | None], None]  # progress is None on a state change
# warm_start(job, jobs) -> the adapter folder the job starts from, "" for the base model
WarmStart = Callable[[Job, list[Job]], str]


class JobQueue:
    """The jobs of one device. Thread-safe; `run_next` runs one job in the calling thread."""

    def __init__(self, store: JobStore, runner: Runner, warm_start: WarmStart | None = None) -> None:
        self._store = store
        self._runner = runner
        self._warm_start = warm_start
        self._lock = threading.Condition()
        self._jobs = store.load()
        self._cancel_requested: set[str] = set()
        self._listeners: list[Listener] = []
        self._closed = False

    def add_listener(self, listener: Listener) -> None:
        """Called (in the worker thread) on every progress report and state change."""
        self._listeners.append(listener)

    def _notify(self, job: Job, progress: Progress | None = None) -> None:
        for listener in list(self._listeners):
            try:
                listener(job, progress)
            except Exception:  # a broken listener must not fail the training run
                log.exception("job listener failed for %s", job.id)

    def _set(self, job: Job, **changes: object) -> Job:
        """Persists a change, then tells listeners. Call with the lock held."""
        updated = dataclasses.replace(job, **changes, updated_at=time.time())  # type: ignore[arg-type]
        self._jobs[job.id] = updated
        self._store.save(self._jobs)
        if "state" in changes:
            TRAINING_JOBS.labels(str(updated.state)).inc()
        return updated

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created_at)

    def get(self, job_id: str) -> Job:
        """Raises: NotFound: no job has that id."""
        with self._lock:
            if job_id not in self._jobs:
                raise NotFound(f"no training job {job_id!r}")
            return self._jobs[job_id]

    def submit(self, dataset_version: str, dataset_path: str, base_model: str, eval_suite: str = "") -> Job:
        """Queues a job (durably) and supersedes older queued ones; a dataset already submitted is a no-op.
        `eval_suite` is the suite its adapter is evaluated on ("": the configured one)."""
        with self._lock:
            for job in self._jobs.values():
                if job.dataset_version == dataset_version:
                    return job  # a redelivered event or a repeated request
            now = time.time()
            superseded = [j for j in self._jobs.values() if j.state == JobState.QUEUED]
            for old in superseded:
                self._set(old, state=JobState.SUPERSEDED, error=f"superseded by dataset {dataset_version}")
            job = Job(
                new_job_id(now),
                dataset_version,
                dataset_path,
                base_model,
                created_at=now,
                updated_at=now,
                eval_suite=eval_suite,
            )
            self._jobs[job.id] = job
            self._store.save(self._jobs)
            TRAINING_JOBS.labels(str(JobState.QUEUED)).inc()
            self._lock.notify_all()
        for old in superseded:
            self._notify(self._jobs[old.id])
        self._notify(job)
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancels a queued job now, a running one at its next step.

        Raises:
            NotFound: no job has that id.
            FailedPrecondition: the job already finished.
        """
        with self._lock:
            job = self.get(job_id)
            if job.state in FINAL_STATES:
                raise FailedPrecondition(f"job {job_id} already finished ({job.state})")
            if job.state == JobState.QUEUED:
                job = self._set(job, state=JobState.CANCELLED, error="cancelled before it started")
            else:
                self._cancel_requested.add(job_id)
        self._notify(job)
        return job

    def _next(self) -> Job | None:
        running = [j for j in self._jobs.values() if j.state == JobState.RUNNING]  # recovered after a crash
        queued = sorted((j for j in self._jobs.values() if j.state == JobState.QUEUED), key=lambda j: j.created_at)
        pending = running or queued
        return pending[0] if pending else None

    def _should_stop(self, job_id: str) -> StopReason | None:
        if job_id in self._cancel_requested:
            return StopReason.CANCEL
        return StopReason.SHUTDOWN if self._closed else None

    def run_next(self) -> Job | None:
        """Runs the recovered RUNNING job or the oldest QUEUED one to a final state; None if idle."""
        with self._lock:
            next_job = self._next()
            if next_job is None:
                return None
            job = next_job  # a Job from here on, also in the callbacks below
            if job.state == JobState.QUEUED:
                init = self._warm_start(job, list(self._jobs.values())) if self._warm_start else ""
                job = self._set(job, state=JobState.RUNNING, init_adapter=init)
            else:
                log.info("resuming job %s after a restart", job.id)
        self._notify(job)
        changes: dict[str, object]
        try:
            output = self._runner(job, lambda progress: self._notify(job, progress), lambda: self._should_stop(job.id))
            if isinstance(output, str):
                output = RunOutput(output)
            changes = {
                "state": JobState.SUCCEEDED,
                "adapter_path": output.adapter_path,
                "metrics": output.metrics,
                "baseline_metrics": output.baseline_metrics,
            }
        except TrainingCancelled as exc:
            if job.id not in self._cancel_requested:  # service shutdown: stays RUNNING, resumes on restart
                log.info("job %s interrupted by shutdown; it resumes at the next start", job.id)
                return job
            changes = {"state": JobState.CANCELLED, "error": str(exc)}
        except Exception as exc:  # OOM, bad data, bugs: the job fails, the service keeps running
            log.exception("training job %s failed", job.id)
            changes = {"state": JobState.FAILED, "error": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            job = self._set(job, **changes)
            self._cancel_requested.discard(job.id)
        self._notify(job)
        return job

    def wait_for_work(self, timeout_s: float | None = None) -> bool:
        """Blocks until a job is runnable or `close()`; returns False when closed."""
        with self._lock:
            self._lock.wait_for(lambda: self._closed or self._next() is not None, timeout=timeout_s)
            return not self._closed

    def close(self) -> None:
        """Stops the worker loop; a running job is asked to stop at its next step (it resumes later)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def work_forever(self) -> None:
        """The worker thread's loop: one job at a time until `close()`."""
        while self.wait_for_work():
            self.run_next()


def training_runner(
    adapters_dir: Path,
    recipe: Recipe,
    resolve_base_model: Callable[[str], Path],
    eval_target: EvalTarget | None = None,
    *,
    isolate: bool = False,
    recipe_path: Path | None = None,
    remote: RemoteTraining | None = None,
) -> Runner:
    """The in-process runner: trains into `adapters_dir/<job id>/`, then evaluates when a target is set.

    With `isolate`, training runs in a child process (`isolated.py`): an out-of-memory kill fails
    the job instead of the service; with `remote`, somewhere else (a Kubernetes Job, k8s_runner.py).
    Each phase leaves its result on disk (checkpoints, `adapter/`, `eval.json`), so a job resumed
    after a crash redoes only the phase it was in.
    """

    def run(job: Job, on_progress: Callable[[Progress], None], should_stop: ShouldStop) -> RunOutput:
        job_dir = adapters_dir / job.id
        adapter_dir = job_dir / ADAPTER
        init_adapter = Path(job.init_adapter) if job.init_adapter else None
        if (adapter_dir / "adapter_config.json").exists():
            log.info("job %s: adapter already trained, not training again", job.id)
        elif remote is not None:
            adapter_dir = remote(job, job_dir, on_progress, should_stop)
        elif isolate:
            adapter_dir = train_in_subprocess(
                Path(job.dataset_path),
                resolve_base_model(job.base_model),
                job_dir,
                recipe_path,
                on_progress,
                should_stop,
                init_adapter,
            )
        else:
            base = resolve_base_model(job.base_model)
            result = train(Path(job.dataset_path), base, job_dir, recipe, on_progress, should_stop, init_adapter)
            adapter_dir = result.adapter_dir
        if eval_target is None:
            return RunOutput(str(adapter_dir))
        evaluation = read_evaluation(job_dir)
        if evaluation is None:
            on_progress(Progress(0, 0, float("nan"), 0.0, 0.0, phase="evaluating"))
            target = eval_target.model_copy(update={"eval_suite": job.eval_suite}) if job.eval_suite else eval_target
            evaluation = evaluate_adapter(target, job.id, adapter_dir, job_dir)
        return RunOutput(str(adapter_dir), evaluation.metrics, evaluation.baseline_metrics)

    return run
