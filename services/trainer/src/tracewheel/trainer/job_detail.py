"""One job with what its folder holds: the recipe it trains with and its loss curve (domain).

The job's folder is `<adapters_dir>/<job id>/` (jobs.training_runner); the curve and the
recipe come from its `loss.jsonl` (loss_log.py), which the training process appends to while it
runs, so a running job's curve is as fresh as its last log. A job trained before the loss log
existed has its curve only in its TensorBoard event files (loss_events.py, read when the folder
has no `loss.jsonl` at all) and its recipe in its adapter's training record (training_record.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracewheel.trainer.jobs import Job
from tracewheel.trainer.loss_events import read_loss_events
from tracewheel.trainer.loss_log import LOSS_LOG, LossLog, LossPoint, read_loss_log
from tracewheel.trainer.train import TENSORBOARD
from tracewheel.trainer.training_record import read_training_record


@dataclass(frozen=True)
class JobDetail:
    """A job, its device-resolved recipe (None: it has not begun training) and its loss curve."""

    job: Job
    recipe: dict[str, Any] | None
    points: list[LossPoint]


def job_dir(job: Job, adapters_dir: Path | None) -> Path | None:
    """The job's folder: under `adapters_dir`, else the one holding its adapter; None when unknown."""
    if adapters_dir is not None:
        return adapters_dir / job.id
    return Path(job.adapter_path).parent if job.adapter_path else None


def read_job_detail(job: Job, adapters_dir: Path | None) -> JobDetail:
    """The job with the recipe and loss curve its folder holds (none for a job not yet started).

    Raises:
        OSError: the folder's loss log exists but cannot be read.
        InvalidArgument: the adapter's training record is not one (names the file).
    """
    folder = job_dir(job, adapters_dir)
    if folder is None:
        return JobDetail(job, None, [])
    if (folder / LOSS_LOG).exists():
        log = read_loss_log(folder)
    else:  # a job from before the loss log: its TensorBoard event files name no recipe
        log = LossLog(None, read_loss_events(folder / TENSORBOARD))
    recipe = log.recipe
    if recipe is None and job.adapter_path:
        record = read_training_record(Path(job.adapter_path))
        recipe = record.recipe if record is not None else None
    return JobDetail(job, recipe, log.points)
