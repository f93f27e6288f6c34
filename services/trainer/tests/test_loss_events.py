"""A job from before loss.jsonl: its curve read back from what transformers' TensorBoardCallback wrote."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import SummaryWriter
from transformers.integrations import TensorBoardCallback

from tracewheel.trainer.job_detail import read_job_detail
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.loss_events import read_loss_events
from tracewheel.trainer.loss_log import LOSS_LOG, LossPoint, append_loss_line, read_loss_log
from tracewheel.trainer.train import ADAPTER, TENSORBOARD
from tracewheel.trainer.training_record import TrainingRecord, write_training_record

LR = 2.0**-10  # float32-exact, as the event file stores it


def log_run(job_folder: Path, logs: list[tuple[int, dict[str, Any]]]) -> None:
    """One training run's trainer logs, through the callback train.py gives the old trainer."""
    callback = TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(job_folder / TENSORBOARD)))
    state = SimpleNamespace(is_world_process_zero=True, global_step=0)
    for step, values in logs:
        state.global_step = step
        callback.on_log(None, state, None, logs=values)
    callback.on_train_end(None, state, None)


def old_job(tmp_path: Path) -> Job:
    adapter = tmp_path / "agent-1" / ADAPTER
    adapter.mkdir(parents=True)
    write_training_record(adapter, TrainingRecord(base_model="tiny", recipe={"lora_r": 2}))
    return Job("agent-1", "v1", "/data", "tiny", JobState.SUCCEEDED, adapter_path=str(adapter))


def test_an_old_jobs_curve_comes_from_its_event_files(tmp_path: Path) -> None:
    job = old_job(tmp_path)
    log_run(
        tmp_path / "agent-1",
        [
            (1, {"loss": 0.5, "grad_norm": 3.0, "learning_rate": LR, "epoch": 0.5}),
            (2, {"loss": 0.25, "grad_norm": 2.0, "learning_rate": LR / 2, "epoch": 1.0}),
            (2, {"eval_loss": 0.375, "eval_runtime": 0.1, "epoch": 1.0}),
            (3, {"loss": float("nan"), "learning_rate": LR / 4}),
            (3, {"train_runtime": 1.0, "train_loss": 0.4, "epoch": 1.5}),  # the end-of-training summary
        ],
    )

    detail = read_job_detail(job, tmp_path)

    assert detail.points == [
        LossPoint(1, loss=0.5, learning_rate=LR),
        LossPoint(2, loss=0.25, eval_loss=0.375, learning_rate=LR / 2),
        LossPoint(3, loss=None, learning_rate=LR / 4),
    ]
    assert detail.recipe == {"lora_r": 2}  # from the adapter's training record
    assert read_job_detail(job, None).points == detail.points  # the folder found from the adapter


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path: Path) -> None:
    job_folder = tmp_path / "agent-1"
    cut_run = [(step, {"loss": 8.0 - step, "learning_rate": LR}) for step in range(1, 7)]
    log_run(job_folder, [*cut_run[:5], (5, {"eval_loss": 9.5}), cut_run[5]])
    # killed after step 6; resumed from checkpoint-4, it logs step 5 again and is cut once more
    log_run(job_folder, [(5, {"loss": 0.5, "learning_rate": LR / 2})])

    points = read_loss_events(job_folder / TENSORBOARD)

    assert [point.step for point in points] == [1, 2, 3, 4, 5]
    assert points[3] == LossPoint(4, loss=4.0, learning_rate=LR)
    assert points[4] == LossPoint(5, loss=0.5, learning_rate=LR / 2)  # the cut run's eval at 5 and step 6 are gone


def test_a_folder_with_a_loss_log_reads_only_the_log(tmp_path: Path) -> None:
    job = old_job(tmp_path)
    log_run(tmp_path / "agent-1", [(1, {"loss": 0.5, "learning_rate": LR}), (2, {"loss": 0.25})])
    append_loss_line(tmp_path / "agent-1", {"begin": 0, "recipe": {"lora_r": 8}})
    append_loss_line(tmp_path / "agent-1", {"step": 1, "loss": 1.5})

    detail = read_job_detail(job, tmp_path)

    assert detail.points == [LossPoint(1, loss=1.5)] and detail.recipe == {"lora_r": 8}
    (tmp_path / "agent-1" / LOSS_LOG).write_text("")  # present but empty: still the log, not the events
    assert read_job_detail(job, tmp_path).points == []
    assert read_loss_log(tmp_path / "agent-1").points == []


def test_a_folder_without_a_log_or_event_files_has_no_curve(tmp_path: Path) -> None:
    (tmp_path / "agent-1" / TENSORBOARD).mkdir(parents=True)

    assert read_job_detail(Job("agent-1", "v1", "/data", "tiny"), tmp_path).points == []
    assert read_job_detail(Job("agent-2", "v1", "/data", "tiny"), tmp_path).points == []


def test_damaged_event_files_are_skipped_with_a_warning_naming_the_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = old_job(tmp_path)
    log_run(tmp_path / "agent-1", [(1, {"loss": 0.5, "learning_rate": LR})])
    events_dir = tmp_path / "agent-1" / TENSORBOARD
    (events_dir / "events.out.tfevents.1.host.1.0").write_bytes(b"not an event file" * 8)
    with (events_dir / "events.out.tfevents.2.host.1.0").open("wb") as framed:  # a record that is no event
        RecordWriter(framed).write(b"\xff\xff\xff\xff not a protobuf")
    (events_dir / "events.out.tfevents.3.host.1.0").mkdir()  # unreadable: a folder

    with caplog.at_level(logging.WARNING, logger="tracewheel.trainer.loss_events"):
        points = read_job_detail(job, tmp_path).points

    assert points == [LossPoint(1, loss=0.5, learning_rate=LR)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 3 and all(str(events_dir) in warning for warning in warnings)
