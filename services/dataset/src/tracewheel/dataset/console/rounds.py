"""The flywheel's rounds: each dataset build joined to the training job that used it, that job's
held-out evaluation and the gate's deployment decision on its adapter.

Pure: the caller fetches builds from the store and jobs, progress and deployments from the
peers, and passes None for a peer that could not be asked; nothing here talks to a server.
A job is matched to its build by `dataset_version`, a deployment to its job by
`adapter_name == job id` (the trainer names adapters after their jobs). Round 0 is the base
model: its held-out success comes from the first evaluated job's baseline, else from what the
first deployment decision compared with.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tracewheel.dataset.records import BuildRecord
from tracewheel.v1 import evaluation_pb2, events_pb2, inference_pb2, trainer_pb2

UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class JobProgress:
    """A running job's last progress report (`loss` NaN until the first one is logged)."""

    step: int
    total_steps: int
    loss: float
    phase: str

    @property
    def summary(self) -> str:
        """While training `step 3/10, loss 1.234`; otherwise the phase (`evaluating`)."""
        if self.phase != "training" or self.total_steps <= 0:
            return self.phase
        loss = f", loss {self.loss:.3f}" if math.isfinite(self.loss) else ""
        return f"step {self.step}/{self.total_steps}{loss}"


@dataclass(frozen=True)
class Round:
    """One round: a build, the job that trained on it, its evaluation and the gate's decision.

    Attributes:
        number: 1 for the oldest build; 0 for the base model.
        version: the build's dataset version ("" for round 0).
        built_at: when the build was recorded (None: not in this store, or round 0).
        train_rows, eval_rows: the build's rows (None: the build is not in this store).
        job_id: the training job ("": none yet); also its adapter's name.
        job_state: queued | running | succeeded | failed | cancelled | superseded ("": no job).
        job_error: why the job failed, was cancelled or superseded.
        job_created_at, job_updated_at: when the job was submitted and last changed state.
        progress: a running job's last report (None: not running, or the trainer did not say).
        suite: the suite the adapter was evaluated on.
        success: the adapter's held-out success (None: not evaluated).
        compared_model: the model it was compared with (the base, or the adapter then deployed).
        compared_success: that model's held-out success (None: unknown).
        deployed: the gate moved the alias to it (None: no decision recorded).
        gate_reason: the gate's reason, with the figures compared.
    """

    number: int
    version: str = ""
    built_at: datetime | None = None
    train_rows: int | None = None
    eval_rows: int | None = None
    job_id: str = ""
    job_state: str = ""
    job_error: str = ""
    job_created_at: datetime | None = None
    job_updated_at: datetime | None = None
    progress: JobProgress | None = None
    suite: str = ""
    success: float | None = None
    compared_model: str = ""
    compared_success: float | None = None
    deployed: bool | None = None
    gate_reason: str = ""

    @property
    def unfinished(self) -> bool:
        return self.job_state in UNFINISHED


@dataclass(frozen=True)
class Timeline:
    """Every round, newest first, round 0 (the base model) last; `notices` say which peer was missing."""

    rounds: list[Round]
    notices: list[str] = field(default_factory=list)

    def success_points(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(the adapters' held-out success, the compared models'), as (round, success) in round order."""
        ordered = sorted(self.rounds, key=lambda r: r.number)
        adapters = [(float(r.number), r.success) for r in ordered if r.number > 0 and r.success is not None]
        compared = [(float(r.number), r.compared_success) for r in ordered if r.compared_success is not None]
        return adapters, compared


def job_state_name(state: trainer_pb2.JobState.ValueType) -> str:
    """`JOB_STATE_RUNNING` -> "running"."""
    return trainer_pb2.JobState.Name(state).removeprefix("JOB_STATE_").lower()


def _moment(job: trainer_pb2.Job, name: Literal["created_at", "updated_at"]) -> datetime | None:
    if not job.HasField(name):
        return None
    moment: datetime = (job.created_at if name == "created_at" else job.updated_at).ToDatetime(tzinfo=UTC)
    return moment


def _job_result(
    job: trainer_pb2.Job | None, name: Literal["metrics", "baseline_metrics"]
) -> evaluation_pb2.EvalResult | None:
    if job is None or not job.HasField(name):
        return None
    return job.metrics if name == "metrics" else job.baseline_metrics


def _decision_result(
    decision: inference_pb2.Deployment | None, name: Literal["candidate", "compared_with"]
) -> evaluation_pb2.EvalResult | None:
    if decision is None or not decision.HasField(name):
        return None
    return decision.candidate if name == "candidate" else decision.compared_with


def _first(*results: evaluation_pb2.EvalResult | None) -> evaluation_pb2.EvalResult | None:
    return next((result for result in results if result is not None), None)


def _progress(report: events_pb2.TrainingProgress | None) -> JobProgress | None:
    if report is None:
        return None
    return JobProgress(report.step, report.total_steps, report.loss, report.phase)


def _round(
    number: int,
    build: BuildRecord | None,
    job: trainer_pb2.Job | None,
    deployment: inference_pb2.Deployment | None,
    progress: Mapping[str, events_pb2.TrainingProgress],
) -> Round:
    """One round from what is known of it (any of the three may be missing)."""
    adapter = _first(_job_result(job, "metrics"), _decision_result(deployment, "candidate"))
    compared = _first(_decision_result(deployment, "compared_with"), _job_result(job, "baseline_metrics"))
    compared_model = deployment.previous_target if deployment and deployment.previous_target else ""
    return Round(
        number=number,
        version=build.version if build else (job.dataset_version if job else ""),
        built_at=build.built_at if build else None,
        train_rows=build.train_rows if build else None,
        eval_rows=build.eval_rows if build else None,
        job_id=job.id if job else (deployment.adapter_name if deployment else ""),
        job_state=job_state_name(job.state) if job else "",
        job_error=job.error if job else "",
        job_created_at=_moment(job, "created_at") if job else None,
        job_updated_at=_moment(job, "updated_at") if job else None,
        progress=_progress(progress.get(job.id)) if job and job_state_name(job.state) == "running" else None,
        suite=(adapter.suite if adapter else "") or (job.eval_suite if job else ""),
        success=adapter.success_rate if adapter else None,
        compared_model=compared_model or (compared.model if compared else ""),
        compared_success=compared.success_rate if compared else None,
        deployed=deployment.deployed if deployment else None,
        gate_reason=deployment.reason if deployment else "",
    )


def _base_round(jobs: Sequence[trainer_pb2.Job], deployments: Sequence[inference_pb2.Deployment]) -> Round:
    """Round 0: the base model, as the first evaluated job's baseline or the first decision's comparison saw it."""
    for job in jobs:
        if job.HasField("baseline_metrics"):
            return Round(
                0, compared_model=job.baseline_metrics.model, compared_success=job.baseline_metrics.success_rate
            )
    for deployment in deployments:
        if deployment.HasField("compared_with"):
            model = deployment.previous_target or deployment.compared_with.model
            return Round(0, compared_model=model, compared_success=deployment.compared_with.success_rate)
    return Round(0)


def join_rounds(
    builds: Sequence[BuildRecord],
    jobs: Sequence[trainer_pb2.Job] | None,
    deployments: Sequence[inference_pb2.Deployment] | None,
    progress: Mapping[str, events_pb2.TrainingProgress] | None = None,
    notices: Sequence[str] = (),
) -> Timeline:
    """The rounds of `builds` (any order), with their jobs and deployment decisions.

    `jobs` or `deployments` None: that peer could not be asked (its part of each round is left
    empty; say why in `notices`). A job whose dataset is not among the builds, and a decision on
    an adapter no listed job made, are rounds of their own, after the builds' in time order.
    `progress` holds running jobs' last reports by job id.
    """
    listed_jobs = sorted(jobs or (), key=lambda job: (job.created_at.seconds, job.created_at.nanos))
    decisions = {deployment.adapter_name: deployment for deployment in deployments or ()}
    by_version: dict[str, trainer_pb2.Job] = {}
    for job in listed_jobs:  # the newest job of a version wins (the trainer keeps one per version)
        by_version[job.dataset_version] = job
    versions = {build.version for build in builds}
    entries: list[tuple[datetime, BuildRecord | None, trainer_pb2.Job | None]] = [
        (build.built_at, build, by_version.get(build.version)) for build in builds
    ]
    entries += [
        (_moment(job, "created_at") or datetime.min.replace(tzinfo=UTC), None, job)
        for version, job in by_version.items()
        if version not in versions
    ]
    entries.sort(key=lambda entry: entry[0])
    reports = progress or {}
    rounds = [
        _round(number, build, job, decisions.get(job.id) if job else None, reports)
        for number, (_, build, job) in enumerate(entries, start=1)
    ]
    trained = {job.id for job in by_version.values()}
    orphans = [d for name, d in decisions.items() if name not in trained]
    rounds += [_round(len(rounds) + i, None, None, d, reports) for i, d in enumerate(orphans, start=1)]
    if rounds or listed_jobs or decisions:
        rounds.insert(0, _base_round(listed_jobs, list(decisions.values())))
    return Timeline(sorted(rounds, key=lambda r: r.number, reverse=True), list(notices))


def digest(
    builds: Sequence[BuildRecord],
    jobs: Sequence[trainer_pb2.Job] | None,
    deployments: Sequence[inference_pb2.Deployment] | None,
    progress: Mapping[str, events_pb2.TrainingProgress] | None = None,
    notices: Sequence[str] = (),
) -> str:
    """A fingerprint of everything the rounds show: it moves when any of it changes."""
    hasher = hashlib.sha256()
    for build in builds:
        hasher.update(f"build {build.version} {build.built_at.isoformat()} {build.train_rows}\n".encode())
    for name, messages in (("job", jobs), ("deployment", deployments)):
        hasher.update(f"{name}s {'unknown' if messages is None else len(messages)}\n".encode())
        for message in messages or ():
            hasher.update(message.SerializeToString(deterministic=True))
    for job_id, report in sorted((progress or {}).items()):
        hasher.update(job_id.encode() + report.SerializeToString(deterministic=True))
    for notice in notices:
        hasher.update(notice.encode())
    return hasher.hexdigest()
