"""The loss curve of a job trained before `loss.jsonl` existed, read from its TensorBoard event files.

Such a run left its curve only in `<job folder>/tensorboard/`, where transformers'
`TensorBoardCallback` wrote each trainer log as scalars at the global step, named by its
`rewrite_logs`: `train/loss`, `train/learning_rate` and `eval/loss`. They are read with
tensorboard's own event reader; the values come back as the float32 the file stores.

Each run (a start or a resume) writes its own event file. A resumed run logs again the steps after
its checkpoint, so, files taken in the order they began, a later file replaces every step from its
first one on: a step logged twice takes the later value and a curve never mixes the cut run's later
steps with the new ones (as a `begin` line does in loss_log.py). A damaged file gives what the reader
gets of it before the damage; one that cannot be read at all is skipped with a warning naming the
folder, so an old job's page still opens.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import (  # type: ignore[import-untyped]
    SCALARS,
    EventAccumulator,
)

from tracewheel.trainer.loss_log import LossPoint

log = logging.getLogger(__name__)

_EVENT_FILES = "events.out.tfevents.*"
_TAGS = {"train/loss": "loss", "eval/loss": "eval_loss", "train/learning_rate": "learning_rate"}

_Steps = dict[int, dict[str, float | None]]


def read_loss_events(events_dir: Path) -> list[LossPoint]:
    """The loss curve in the event files of `events_dir`, one point per step in step order.

    Empty when the folder is missing or holds no loss scalars; never raises for a damaged file.
    """
    runs = [run for path in sorted(events_dir.glob(_EVENT_FILES)) if (run := _read_run(path, events_dir))]
    steps: _Steps = {}
    for _, run_steps in sorted(runs, key=lambda run: run[0]):
        first = min(run_steps)
        steps = {step: values for step, values in steps.items() if step < first}
        steps.update(run_steps)
    return [LossPoint(step, **values) for step, values in sorted(steps.items())]


def _read_run(path: Path, events_dir: Path) -> tuple[float, _Steps] | None:
    """The wall time a file's first loss scalar was written at and its steps; None when it has none."""
    try:
        accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0}).Reload()
    except Exception:  # a damaged file raises protobuf, OS or tensorboard errors, whichever part broke
        log.warning("skipped the unreadable event file %s in %s", path.name, events_dir, exc_info=True)
        return None
    if accumulator.file_version is None:  # a SummaryWriter file always begins with its version
        log.warning("skipped the event file %s in %s: no readable event in it", path.name, events_dir)
        return None
    tags = set(accumulator.Tags()[SCALARS]) & _TAGS.keys()
    events = sorted(
        ((event, _TAGS[tag]) for tag in tags for event in accumulator.Scalars(tag)), key=lambda pair: pair[0].wall_time
    )
    steps: _Steps = {}
    for event, name in events:  # by wall time: a value logged twice in one run keeps the later one
        steps.setdefault(event.step, {})[name] = event.value if math.isfinite(event.value) else None
    return (events[0][0].wall_time, steps) if events else None
