"""A training run's loss curve: `<output_dir>/loss.jsonl`, one JSON line per trainer log (domain).

Why this file and not the TensorBoard event files the run also writes: a SummaryWriter buffers
events and flushes them every two minutes, so a running job's curve would lag behind its steps;
reading them takes tensorboard's event reader, an optional install (without tensorboard no event
files are written at all); and a line here is appended the moment the trainer logs, readable as
plain text by the trainer service following a Kubernetes Job on the shared adapters volume.
Only the first process of a torchrun run writes. A job trained before this file existed has only
its event files; its curve is read from those (loss_events.py, called by job_detail.py).

Lines, in the order the run writes them:
- `{"begin": STEP, "recipe": {...}}` when a run starts or resumes: STEP is the step it resumed
  from (0 for a fresh start), `recipe` the device-resolved recipe it trains with;
- `{"step": N, "loss": L, "learning_rate": R}` for a training log, `{"step": N, "eval_loss": L}`
  for an evaluation; a value that is not finite is written as null.

A resumed run logs again the steps after its checkpoint. Read back, a `begin` drops every point
past its step, so those steps take the resumed run's values and a curve never mixes the cut run's
later steps with the new ones. A line cut short by a kill is skipped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracewheel.trainer.recipe import Recipe

LOSS_LOG = "loss.jsonl"
_VALUES = ("loss", "eval_loss", "learning_rate")


@dataclass(frozen=True)
class LossPoint:
    """One logged step; a value that step did not log (or logged as not finite) is None."""

    step: int
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None


@dataclass(frozen=True)
class LossLog:
    """What a job folder's loss log holds.

    Attributes:
        recipe: the device-resolved recipe of the latest run; None when no run has begun.
        points: one per logged step, in step order.
    """

    recipe: dict[str, Any] | None
    points: list[LossPoint]


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def append_loss_line(output_dir: Path, message: dict[str, Any]) -> None:
    """Appends one line to `output_dir/loss.jsonl` (the folder is created when missing).

    Raises:
        OSError: the folder cannot be written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / LOSS_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(message, allow_nan=False) + "\n")


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = []
    for line in text.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a run killed while writing it
        if isinstance(message, dict):
            lines.append(message)
    return lines


def read_loss_log(output_dir: Path) -> LossLog:
    """The loss curve and latest recipe in `output_dir/loss.jsonl`; empty when there is none.

    A `begin` line drops the points after its step (a resumed run logs them again); lines of one
    step merge (a training log and an evaluation at the same step), a later value winning.

    Raises:
        OSError: the file exists but cannot be read.
    """
    recipe: dict[str, Any] | None = None
    steps: dict[int, dict[str, float | None]] = {}
    for message in _lines(output_dir / LOSS_LOG):
        begin = message.get("begin")
        if isinstance(begin, int):
            steps = {step: values for step, values in steps.items() if step <= begin}
            recipe = message.get("recipe") if isinstance(message.get("recipe"), dict) else recipe
            continue
        step = message.get("step")
        if not isinstance(step, int):
            continue
        values = {name: _finite(message[name]) for name in _VALUES if name in message}
        steps.setdefault(step, {}).update(values)
    points = [LossPoint(step, **values) for step, values in sorted(steps.items())]
    return LossLog(recipe, points)


def loss_log_callback(output_dir: Path, recipe: Recipe) -> Any:
    """A transformers TrainerCallback that writes `output_dir/loss.jsonl` (first process only)."""
    from transformers import TrainerCallback

    class LossLogger(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:  # the state is the checkpoint's when resuming
                append_loss_line(output_dir, {"begin": state.global_step, "recipe": recipe.model_dump(mode="json")})

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not state.is_world_process_zero or not logs or not ("loss" in logs or "eval_loss" in logs):
                return  # the end-of-training summary (train_loss, runtime) is no point of the curve
            values = {name: _finite(logs[name]) for name in _VALUES if name in logs}
            append_loss_line(output_dir, {"step": state.global_step, **values})

    return LossLogger()
