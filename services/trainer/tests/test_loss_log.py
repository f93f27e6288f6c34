"""The loss log: what training writes, read back as a curve; a resumed run's steps replace the cut run's."""

from __future__ import annotations

import json
from pathlib import Path

from tracewheel.trainer.job_detail import read_job_detail
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.loss_log import LOSS_LOG, LossPoint, append_loss_line, read_loss_log
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, train
from tracewheel.trainer.training_record import TrainingRecord, write_training_record


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path: Path) -> None:
    append_loss_line(tmp_path, {"begin": 0, "recipe": {"lora_r": 4}})
    for step in range(1, 7):
        append_loss_line(tmp_path, {"step": step, "loss": 10.0 - step, "learning_rate": 1e-3})
    append_loss_line(tmp_path, {"step": 5, "eval_loss": 9.5})
    # killed after step 6; resumed from checkpoint-4 with another recipe
    append_loss_line(tmp_path, {"begin": 4, "recipe": {"lora_r": 8}})
    append_loss_line(tmp_path, {"step": 5, "loss": 0.5, "learning_rate": 5e-4})

    log = read_loss_log(tmp_path)

    assert log.recipe == {"lora_r": 8}
    assert [point.step for point in log.points] == [1, 2, 3, 4, 5]
    assert log.points[3] == LossPoint(4, loss=6.0, learning_rate=1e-3)
    assert log.points[4] == LossPoint(5, loss=0.5, learning_rate=5e-4)  # the cut run's eval at 5 is gone


def test_lines_of_one_step_merge_and_broken_or_non_finite_values_are_skipped(tmp_path: Path) -> None:
    append_loss_line(tmp_path, {"begin": 0, "recipe": {}})
    append_loss_line(tmp_path, {"step": 2, "loss": None, "learning_rate": 1e-4})
    append_loss_line(tmp_path, {"step": 2, "eval_loss": 1.5})
    with (tmp_path / LOSS_LOG).open("a") as log:
        log.write('{"step": 3, "loss": NaN}\n["not", "a", "line"]\n{"step": "x", "loss": 1}\n{"step": 4, "lo')

    points = read_loss_log(tmp_path).points

    assert points == [LossPoint(2, loss=None, eval_loss=1.5, learning_rate=1e-4), LossPoint(3)]


def test_a_folder_without_a_log_has_no_curve_and_no_recipe(tmp_path: Path) -> None:
    log = read_loss_log(tmp_path / "missing")
    assert log.recipe is None and log.points == []


def test_an_adapter_from_before_the_log_still_names_its_recipe(tmp_path: Path) -> None:
    adapter = tmp_path / "agent-1" / ADAPTER
    adapter.mkdir(parents=True)
    write_training_record(adapter, TrainingRecord(base_model="tiny", recipe={"lora_r": 2}))
    job = Job("agent-1", "v1", "/data", "tiny", JobState.SUCCEEDED, adapter_path=str(adapter))

    assert read_job_detail(job, None).recipe == {"lora_r": 2}
    queued = Job("agent-2", "v2", "/data", "tiny")
    assert read_job_detail(queued, tmp_path).recipe is None and read_job_detail(queued, None).points == []


def test_training_logs_each_step_and_the_final_eval_with_its_device_resolved_recipe(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    train(dataset_dir, tiny_model_dir, output, tiny_recipe)

    log = read_loss_log(output)
    lines = [json.loads(line) for line in (output / LOSS_LOG).read_text().splitlines()]

    assert lines[0]["begin"] == 0 and lines[0]["recipe"]["optim"] == "adamw_torch"  # resolved for the CPU
    assert log.recipe is not None and log.recipe["lora_r"] == 4 and log.recipe["bf16"] is False
    assert [point.step for point in log.points] == [1, 2]
    assert all(point.loss is not None and point.learning_rate is not None for point in log.points)
    assert log.points[-1].eval_loss is not None and log.points[0].eval_loss is None
