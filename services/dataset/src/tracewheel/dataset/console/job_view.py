"""What the jobs pages show of the trainer's jobs (plain Python over trainer.proto messages, no calls).

A job's row in the list (state, dataset, when, where it stands, held-out success or why it ended)
and a job's page: its recipe as a table, its loss and eval-loss curves as a chart (thinned to at
most `MAX_CHART_POINTS` per line, so a long run stays a small page), its latest logged steps and
its evaluation against its base model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from markupsafe import Markup

from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.dataset.console.chart import Series, line_chart
from tracewheel.dataset.console.gate_view import FigureRow, figure_rows, path_part
from tracewheel.dataset.console.rounds import job_state_name as state_name
from tracewheel.v1 import events_pb2, trainer_pb2

MAX_CHART_POINTS = 300
LATEST_STEPS = 20
"""The logged steps the job page lists under its chart, newest first."""
UNFINISHED = frozenset({"queued", "running"})


def _when(message: trainer_pb2.Job, name: Literal["created_at", "updated_at"]) -> str:
    if not message.HasField(name):
        return ""
    moment: datetime = (message.created_at if name == "created_at" else message.updated_at).ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def progress_summary(progress: events_pb2.TrainingProgress | None) -> str:
    """ "step 3 of 10 · loss 1.23 · 120 tokens/s · about 40 s left", or the phase alone; "" for none."""
    if progress is None:
        return ""
    if progress.total_steps <= 0:
        return progress.phase
    parts = [f"step {progress.step} of {progress.total_steps}"]
    if math.isfinite(progress.loss) and progress.step > 0:
        parts.append(f"loss {progress.loss:.4g}")
    if progress.tokens_per_second > 0:
        parts.append(f"{progress.tokens_per_second:.0f} tokens/s")
    if progress.phase == "training" and progress.eta_s > 0:
        parts.append(f"about {progress.eta_s:.0f} s left")
    if progress.phase != "training":
        parts.append(progress.phase)
    return " · ".join(parts)


def held_out_success(job: trainer_pb2.Job) -> str:
    """ "adapter 60.0% (6/10) vs base 40.0% (4/10)" for an evaluated job; "" otherwise."""
    if not job.HasField("metrics"):
        return ""
    adapter = eval_result_from_proto(job.metrics)
    text = f"adapter {adapter.success_rate:.1%} ({adapter.solved}/{adapter.tasks})"
    if job.HasField("baseline_metrics"):
        base = eval_result_from_proto(job.baseline_metrics)
        text += f" vs base {base.success_rate:.1%} ({base.solved}/{base.tasks})"
    return text


def job_row(job: trainer_pb2.Job, progress: events_pb2.TrainingProgress | None = None) -> dict[str, Any]:
    """One job as the list and the job page show it."""
    state = state_name(job.state)
    return {
        "id": job.id,
        "url": f"/console/jobs/{path_part(job.id)}",
        "state": state,
        "unfinished": state in UNFINISHED,
        "dataset_version": job.dataset_version,
        "dataset_url": f"/console/datasets/{path_part(job.dataset_version)}" if job.dataset_version else "",
        "dataset_path": job.dataset_path,
        "created": _when(job, "created_at"),
        "updated": _when(job, "updated_at"),
        "progress": progress_summary(progress) if state == "running" else "",
        "success": held_out_success(job),
        "error": job.error,
        "adapter_path": job.adapter_path,
        "init_adapter": job.init_adapter,
        "eval_suite": job.eval_suite,
        "deployment_url": f"/console/deployments/{path_part(job.id)}",
        "cancel_url": f"/console/api/jobs/{path_part(job.id)}/cancel",
    }


def recipe_rows(recipe_json: str) -> list[tuple[str, str]]:
    """The recipe's options in name order, each value as YAML-like text; none before training began."""
    if not recipe_json:
        return []
    recipe = json.loads(recipe_json)
    return [(name, _option(value)) for name, value in sorted(recipe.items())]


def _option(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def thin(points: Sequence[tuple[float, float]], limit: int = MAX_CHART_POINTS) -> list[tuple[float, float]]:
    """At most `limit` points evenly picked from `points`, always keeping the last."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    picked = list(points[::stride])
    if picked[-1] != points[-1]:
        picked.append(points[-1])
    return picked


@dataclass(frozen=True)
class StepRow:
    """One logged step as the job page lists it ("" where the step logged no such value)."""

    step: int
    loss: str
    eval_loss: str
    learning_rate: str


def _value(point: trainer_pb2.LossPoint, name: Literal["loss", "eval_loss", "learning_rate"], shown: str) -> str:
    return format(getattr(point, name), shown) if point.HasField(name) else ""


def loss_chart(curve: Sequence[trainer_pb2.LossPoint]) -> Markup:
    """The loss and eval-loss lines per step (a line the job did not log is left out)."""
    loss = [(float(p.step), p.loss) for p in curve if p.HasField("loss")]
    eval_loss = [(float(p.step), p.eval_loss) for p in curve if p.HasField("eval_loss")]
    series = [Series("loss", thin(loss))] + ([Series("eval loss", thin(eval_loss))] if eval_loss else [])
    return line_chart(series, title="Loss per step", x_label="step")


def latest_steps(curve: Sequence[trainer_pb2.LossPoint], count: int = LATEST_STEPS) -> list[StepRow]:
    """The newest `count` logged steps, newest first."""
    return [
        StepRow(p.step, _value(p, "loss", ".4f"), _value(p, "eval_loss", ".4f"), _value(p, "learning_rate", ".3g"))
        for p in reversed(curve[-count:])
    ]


def evaluation_rows(job: trainer_pb2.Job) -> list[FigureRow]:
    """The adapter's and its base model's held-out figures side by side; none before evaluation."""
    if not job.HasField("metrics") and not job.HasField("baseline_metrics"):
        return []
    adapter = eval_result_from_proto(job.metrics) if job.HasField("metrics") else None
    base = eval_result_from_proto(job.baseline_metrics) if job.HasField("baseline_metrics") else None
    return figure_rows(adapter, base)


def job_page_context(detail: trainer_pb2.JobDetail) -> dict[str, Any]:
    """The job page's (and its live fragment's) variables."""
    return {
        "job": job_row(detail.job, detail.progress),
        "phase": detail.progress.phase,
        "recipe": recipe_rows(detail.recipe_json),
        "chart": loss_chart(detail.loss_curve),
        "logged_steps": len(detail.loss_curve),
        "steps": latest_steps(detail.loss_curve),
        "evaluation": evaluation_rows(detail.job),
    }
