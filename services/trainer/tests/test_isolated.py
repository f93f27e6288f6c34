"""Training in a child process: a killed child fails the job with a reason; the caller lives on."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest
import yaml

from tracewheel.trainer.isolated import TrainingFailed, train_in_subprocess
from tracewheel.trainer.train import Progress, TrainingCancelled

RECIPE = {"max_steps": 3, "save_steps": 1, "lora_r": 4, "device": "cpu", "eval": False}


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def _training_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "tracewheel.trainer.train_cli" in " ".join(p.cmdline())]


def test_the_child_trains_and_reports_progress(tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    seen: list[Progress] = []
    adapter = train_in_subprocess(
        dataset_dir, tiny_model_dir, tmp_path / "out", _recipe(tmp_path), seen.append, lambda: False
    )
    assert (adapter / "adapter_model.safetensors").exists()
    assert [p.step for p in seen if p.phase == "training"] == [1, 2, 3]


def test_a_child_killed_like_the_oom_killer_does_fails_with_a_reason(
    tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    def kill_child(progress: Progress) -> None:  # what the kernel does to the biggest process
        for child in _training_children():
            child.send_signal(signal.SIGKILL)

    with pytest.raises(TrainingFailed, match=r"killed by SIGKILL.*OOM"):
        train_in_subprocess(dataset_dir, tiny_model_dir, tmp_path / "out", _recipe(tmp_path), kill_child, lambda: False)
    assert _training_children() == []


def test_stop_requests_cancel_the_child(tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    steps: list[int] = []
    with pytest.raises(TrainingCancelled):
        train_in_subprocess(
            dataset_dir, tiny_model_dir, tmp_path / "out", _recipe(tmp_path), lambda p: steps.append(p.step),
            lambda: bool(steps),
        )  # fmt: skip
    assert _training_children() == []


def test_a_bad_dataset_fails_with_the_childs_message(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingFailed, match="does not exist"):
        train_in_subprocess(
            tmp_path / "missing", tiny_model_dir, tmp_path / "out", _recipe(tmp_path), lambda p: None, lambda: False
        )
