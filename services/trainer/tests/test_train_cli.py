"""Checkpoint + resume: a training subprocess killed with SIGKILL continues from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tracewheel.trainer.loss_log import LOSS_LOG, read_loss_log
from tracewheel.trainer.train import CHECKPOINTS, last_checkpoint


def cli(dataset: Path, model: Path, output: Path, recipe: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tracewheel.trainer.train_cli",
        str(dataset),
        str(model),
        str(output),
        "--recipe",
        str(recipe),
    ]


def test_killed_run_resumes_from_its_last_checkpoint(tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "max_steps": 4,
                "save_steps": 2,
                "lora_r": 4,
                "per_device_train_batch_size": 1,
                "device": "cpu",
                "eval": False,
            }
        )
    )
    output = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cli(dataset_dir, tiny_model_dir, output, recipe), env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while last_checkpoint(output / CHECKPOINTS) is None:
        assert first.poll() is None, "training exited before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 90 s"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    killed_at = last_checkpoint(output / CHECKPOINTS)
    assert killed_at is not None and killed_at.name == "checkpoint-2"
    assert not (output / "adapter").exists()

    second = subprocess.run(
        cli(dataset_dir, tiny_model_dir, output, recipe), env=env, capture_output=True, text=True, timeout=120
    )

    assert second.returncode == 0, second.stderr[-2000:]
    lines = [json.loads(line) for line in second.stdout.splitlines() if line.startswith("{")]
    result = lines[-1]["result"]
    assert result["resumed_from_step"] == 2 and result["global_step"] == 4
    assert [line["progress"]["step"] for line in lines[:-1]] == [3, 4]
    assert (output / "adapter" / "adapter_model.safetensors").exists()
    # the loss log holds both runs; read back, steps 3 and 4 are the resumed run's, each once
    begins = [line for line in (output / LOSS_LOG).read_text().splitlines() if '"begin"' in line]
    assert [json.loads(line)["begin"] for line in begins] == [0, 2]
    assert [point.step for point in read_loss_log(output).points] == [1, 2, 3, 4]


def test_cli_reports_a_bad_dataset_and_exits_2(tiny_model_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("device: cpu\n")
    done = subprocess.run(
        cli(tmp_path / "missing", tiny_model_dir, tmp_path / "out", recipe), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "dataset directory" in done.stderr and "does not exist" in done.stderr
