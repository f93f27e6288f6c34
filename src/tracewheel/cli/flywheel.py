"""What `tracewheel demo` drives: the stack's gRPC APIs, and the waits between events.

The demo calls the agent three times (baseline, demonstrations, the student's run); everything
between a published trace and a deployed adapter happens by events inside the stack (dataset
ingest -> build -> `datasets.v1.built` -> training job -> evaluation -> `models.v1.trained` ->
gated deployment). `Flywheel` only watches that through the trainer's and inference's APIs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from tracewheel.cli.stack import StackInfo
from tracewheel.core.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    dataset_pb2_grpc,
    evaluation_pb2,
    inference_pb2,
    inference_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)

FINAL_JOB_STATES = {
    trainer_pb2.JOB_STATE_SUCCEEDED,
    trainer_pb2.JOB_STATE_FAILED,
    trainer_pb2.JOB_STATE_CANCELLED,
    trainer_pb2.JOB_STATE_SUPERSEDED,
}


def interruptible_call(method: Any, request: Any, timeout_s: float, *, metadata: Sequence[tuple[str, str]] = ()) -> Any:
    """A unary gRPC call that Ctrl-C can stop: a blocking `method(request)` holds the main thread
    in C until the answer comes (minutes for a suite run), so SIGINT waited for it. The call runs
    as a future, waited on in short slices; an interrupt cancels it and propagates."""
    future = method.future(request, timeout=timeout_s, metadata=tuple(metadata))
    try:
        while True:
            try:
                return future.result(timeout=0.25)
            except grpc.FutureTimeoutError:
                continue
    except BaseException:
        future.cancel()
        raise


SuiteProgress = Callable[[int, int], None]
"""Told (tasks finished, tasks in all) when a suite starts and as each task finishes."""


def _no_progress(done: int, total: int) -> None:
    return None


def follow_suite(stream: Any, on_progress: SuiteProgress = _no_progress) -> agent_pb2.RunSuiteResponse:
    """Reads an Agent.StreamSuite call to its result, telling `on_progress` as tasks finish.
    Ctrl-C (or any error here) cancels the call, and the agent stops the suite.

    Raises:
        Unavailable: the stream ended without a result.
    """
    try:
        for message in stream:
            if message.HasField("result"):
                return message.result
            on_progress(message.tasks_done, message.tasks_total)
    except BaseException:
        stream.cancel()
        raise
    raise Unavailable("the agent ended the suite without its result; its log says why")


def result_json(message: evaluation_pb2.EvalResult) -> dict[str, Any]:
    """An evaluation in its JSON form (`EvalResult.model_dump`), as the demo's state file keeps it."""
    return eval_result_from_proto(message).model_dump(mode="json")


def _state(state: trainer_pb2.JobState.ValueType) -> str:
    return trainer_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


@dataclass(frozen=True)
class RoundResult:
    """One training round as the stack reports it."""

    job_id: str
    dataset_version: str
    dataset_path: str
    adapter_path: str
    state: str
    error: str
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    deployed: bool
    deploy_reason: str


class Flywheel:
    """gRPC clients on one running stack."""

    def __init__(self, info: StackInfo) -> None:
        def channel(service: str) -> grpc.Channel:
            return grpc.insecure_channel(f"127.0.0.1:{info.services[service]['grpc_port']}")

        self._channels = [channel(name) for name in ("agent", "trainer", "inference", "dataset")]
        agent, trainer, inference, dataset = self._channels
        self.agent = agent_pb2_grpc.AgentStub(agent)
        self.trainer = trainer_pb2_grpc.TrainerStub(trainer)
        self.inference = inference_pb2_grpc.InferenceControlStub(inference)
        self.dataset = dataset_pb2_grpc.DatasetStub(dataset)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def base_model(self) -> str:
        """The name inference serves its base model under."""
        for model in self.inference.ListModels(inference_pb2.ListModelsRequest(), timeout=30).models:
            if model.kind == "base":
                return model.name
        raise FailedPrecondition("inference lists no base model")

    def _suite(self, request: agent_pb2.SuiteRequest, timeout_s: float, on_progress: SuiteProgress) -> Any:
        return follow_suite(self.agent.StreamSuite(request, timeout=timeout_s), on_progress)

    def evaluate(
        self,
        model: str,
        suite: str,
        timeout_s: float,
        *,
        use_cache: bool = False,
        on_progress: SuiteProgress = _no_progress,
    ) -> dict[str, Any]:
        evaluate = agent_pb2.EvaluateRequest(model=model, suite=suite, use_cache=use_cache)
        return result_json(self._suite(agent_pb2.SuiteRequest(evaluate=evaluate), timeout_s, on_progress).metrics)

    def collect_demonstrations(
        self, timeout_s: float, *, count: int = 0, suite: str = "train", on_progress: SuiteProgress = _no_progress
    ) -> dict[str, Any]:
        """The first `count` tasks (0: all) with a reference of a suite's train split (default: the
        shop's), replayed from their references."""
        tasks = agent_pb2.TaskSlice(first_task=0, task_count=count)
        demonstrations = agent_pb2.CollectDemonstrationsRequest(suite=suite, tasks=tasks)
        response = self._suite(agent_pb2.SuiteRequest(demonstrations=demonstrations), timeout_s, on_progress)
        return {**result_json(response.metrics), "trace_ids": list(response.trace_ids)}

    def run_student(
        self,
        model: str,
        timeout_s: float,
        *,
        first: int = 0,
        suite: str = "train",
        on_progress: SuiteProgress = _no_progress,
    ) -> dict[str, Any]:
        """`model` runs a suite's train split (default: the shop's) from task `first` on, its traces published."""
        tasks = agent_pb2.TaskSlice(first_task=first)
        run_suite = agent_pb2.RunSuiteRequest(suite=suite, model=model, publish_traces=True, tasks=tasks)
        response = self._suite(agent_pb2.SuiteRequest(run_suite=run_suite), timeout_s, on_progress)
        return {**result_json(response.metrics), "trace_ids": list(response.trace_ids)}

    def job_ids(self) -> list[str]:
        return [job.id for job in self.trainer.ListJobs(trainer_pb2.ListJobsRequest(), timeout=30).jobs]

    def _deployment(self, adapter: str) -> inference_pb2.Deployment | None:
        response = self.inference.ListDeployments(inference_pb2.ListDeploymentsRequest(), timeout=30)
        return next((d for d in response.deployments if d.adapter_name == adapter), None)

    def wait_round(
        self, known_jobs: set[str], timeout_s: float, on_status: Callable[[str], None] = lambda _: None
    ) -> RoundResult:
        """Waits for the training job a new dataset build starts (not in `known_jobs`) to finish and
        for inference's decision on its adapter.

        Raises:
            DeadlineExceeded: nothing finished within `timeout_s` (the message says where it stood).
        """
        deadline = time.monotonic() + timeout_s
        watcher = _ProgressWatcher(self.trainer, on_status)
        status = "waiting for the dataset build to start a training job"
        try:
            while time.monotonic() < deadline:
                jobs = self.trainer.ListJobs(trainer_pb2.ListJobsRequest(), timeout=30).jobs
                new = [j for j in jobs if j.id not in known_jobs]
                active = [j for j in new if j.state not in FINAL_JOB_STATES]
                done = [j for j in new if j.state in (trainer_pb2.JOB_STATE_SUCCEEDED, trainer_pb2.JOB_STATE_FAILED)]
                if active:
                    watcher.follow(active[0].id)
                    status = f"job {active[0].id}: {_state(active[0].state)}"
                elif done:
                    job = done[-1]
                    if job.state == trainer_pb2.JOB_STATE_FAILED:
                        return _round(job, None)
                    decision = self._deployment(job.id)
                    if decision is not None:
                        return _round(job, decision)
                    status = f"job {job.id} done; waiting for inference's deployment decision"
                on_status(status)
                time.sleep(1.0)
        finally:
            watcher.stop()
        raise DeadlineExceeded(f"no round finished within {timeout_s:.0f} s; last seen: {status}")


def _round(job: trainer_pb2.Job, decision: inference_pb2.Deployment | None) -> RoundResult:
    return RoundResult(
        job_id=job.id,
        dataset_version=job.dataset_version,
        dataset_path=job.dataset_path,
        adapter_path=job.adapter_path,
        state=_state(job.state),
        error=job.error,
        metrics=result_json(job.metrics) if job.HasField("metrics") else {},
        baseline_metrics=result_json(job.baseline_metrics) if job.HasField("baseline_metrics") else {},
        deployed=bool(decision and decision.deployed),
        deploy_reason=decision.reason if decision else "",
    )


class _ProgressWatcher:
    """Follows one job's StreamProgress in a thread and reports step, loss and ETA."""

    def __init__(self, trainer: trainer_pb2_grpc.TrainerStub, on_status: Callable[[str], None]) -> None:
        self._trainer = trainer
        self._on_status = on_status
        self._job = ""
        self._call: Any = None

    def follow(self, job_id: str) -> None:
        if job_id == self._job:
            return
        self.stop()
        self._job = job_id
        self._call = self._trainer.StreamProgress(trainer_pb2.StreamProgressRequest(job_id=job_id))
        threading.Thread(target=self._read, args=(self._call, job_id), daemon=True).start()

    def _read(self, call: Any, job_id: str) -> None:
        try:
            for progress in call:
                if progress.phase == "training" and progress.total_steps:
                    self._on_status(
                        f"job {job_id}: training step {progress.step}/{progress.total_steps}, "
                        f"loss {progress.loss:.3f}, {progress.tokens_per_second:.0f} tok/s, ETA {progress.eta_s:.0f} s"
                    )
                elif progress.phase:
                    self._on_status(f"job {job_id}: {progress.phase}")
        except grpc.RpcError:
            return  # cancelled by stop(), or the trainer went away (the poll loop notices)

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
