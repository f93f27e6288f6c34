"""Domain objects -> protobuf messages, shared by server.py and events.py."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.trainer.job_detail import JobDetail
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.train import Progress
from tracewheel.v1 import evaluation_pb2, events_pb2, trainer_pb2

# TrainingProgress.phase for a state change (a Progress carries its own phase while training)
PHASES = {
    JobState.QUEUED: "queued",
    JobState.RUNNING: "training",
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
    JobState.SUPERSEDED: "superseded",
}


def job_to_proto(job: Job) -> trainer_pb2.Job:
    return trainer_pb2.Job(
        id=job.id,
        dataset_version=job.dataset_version,
        dataset_path=job.dataset_path,
        state=trainer_pb2.JobState.Value(f"JOB_STATE_{job.state.value}"),
        error=job.error,
        adapter_path=job.adapter_path,
        metrics=metrics_proto(job.metrics),
        baseline_metrics=metrics_proto(job.baseline_metrics),
        init_adapter=job.init_adapter,
        eval_suite=job.eval_suite,
        created_at=_timestamp(job.created_at),
        updated_at=_timestamp(job.updated_at),
    )


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def metrics_proto(result: EvalResult | None) -> evaluation_pb2.EvalResult | None:
    """A job's evaluation as its message (None, the field unset, when the job was not evaluated)."""
    return None if result is None else eval_result_to_proto(result)


def progress_to_proto(job: Job, progress: Progress | None) -> events_pb2.TrainingProgress:
    if progress is None:
        return events_pb2.TrainingProgress(job_id=job.id, phase=PHASES[job.state])
    return events_pb2.TrainingProgress(
        job_id=job.id,
        step=progress.step,
        total_steps=progress.total_steps,
        loss=progress.loss,
        tokens_per_second=progress.tokens_per_second,
        eta_s=progress.eta_s,
        phase=progress.phase,
    )


def job_detail_to_proto(detail: JobDetail, progress: events_pb2.TrainingProgress) -> trainer_pb2.JobDetail:
    """A job with its recipe (JSON; "" before it begins), where it stands and its loss curve."""
    return trainer_pb2.JobDetail(
        job=job_to_proto(detail.job),
        recipe_json="" if detail.recipe is None else json.dumps(detail.recipe),
        progress=progress,
        loss_curve=[
            trainer_pb2.LossPoint(
                step=point.step, loss=point.loss, eval_loss=point.eval_loss, learning_rate=point.learning_rate
            )
            for point in detail.points
        ],
    )
