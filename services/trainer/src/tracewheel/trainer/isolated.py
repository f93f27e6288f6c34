"""Training in a child process (`train_cli`), so an out-of-memory kill fails the job, not the service.

The kernel's OOM killer picks the biggest process; in-process training would take the whole
trainer service down with it, and the job (still RUNNING in jobs.json) would be resumed at the
next start, to be killed again: a crash loop. In a child process the kill is an exit status:
the job fails with a reason that says so and the service keeps serving. The child reads the
same recipe (file and TW_RECIPE_* overrides from the inherited environment) and resumes from
the same checkpoints; its progress arrives as JSON lines on stdout, its log goes to
`<output_dir>/train.log`.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tracewheel.core.errors import TracewheelError
from tracewheel.trainer.train import Progress, TrainingCancelled

log = logging.getLogger(__name__)


class TrainingFailed(TracewheelError):
    """The training process failed or was killed; the message says how."""

    grpc_code_name = "INTERNAL"
    http_status = 500


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _read_reports(child: subprocess.Popen[str], on_progress: Callable[[Progress], None]) -> Path | None:
    """Passes on the child's progress lines until its output ends; the adapter dir it reported, if any."""
    adapter: Path | None = None
    assert child.stdout is not None
    with child.stdout:
        for line in child.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library's print, not ours
            if "progress" in message:
                on_progress(Progress(**message["progress"]))
            elif "result" in message:
                adapter = Path(message["result"]["adapter_dir"])
    return adapter


def _adapter_or_failure(code: int, adapter: Path | None, log_path: Path) -> Path:
    """The adapter of a child that exited cleanly and reported one.

    Raises:
        TrainingFailed: the child exited non-zero, was killed, or reported no adapter.
    """
    if code < 0:
        name = signal.Signals(-code).name
        hint = (
            " (likely the kernel's OOM killer: build the dataset with a lower TW_DATASET_MAX_LENGTH or lower the batch)"
            if code == -signal.SIGKILL
            else ""
        )
        raise TrainingFailed(f"the training process was killed by {name}{hint}; log: {log_path}")
    if code != 0 or adapter is None:
        raise TrainingFailed(f"the training process exited with {code}: {_tail(log_path)}")
    return adapter


def train_in_subprocess(
    dataset_dir: Path,
    base_model_dir: Path,
    output_dir: Path,
    recipe_path: Path | None,
    on_progress: Callable[[Progress], None],
    should_stop: Callable[[], object],
    init_adapter: Path | None = None,
) -> Path:
    """Runs one training in `python -m tracewheel.trainer.train_cli` and returns the adapter dir.

    Raises:
        TrainingCancelled: `should_stop` turned true (the child is stopped; checkpoints remain).
        TrainingFailed: the child exited non-zero or was killed (e.g. by the OOM killer).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tracewheel.trainer.train_cli", str(dataset_dir), str(base_model_dir)]
    command += [str(output_dir)] + (["--recipe", str(recipe_path)] if recipe_path else [])
    command += ["--init-adapter", str(init_adapter)] if init_adapter else []
    log_path = output_dir / "train.log"
    with log_path.open("a", encoding="utf-8") as log_file:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True)
    stopped = threading.Event()

    def watch() -> None:  # the child trains in its own process: stop it from here when asked
        while child.poll() is None:
            if should_stop():
                stopped.set()
                child.send_signal(signal.SIGKILL)  # a checkpoint cut by the kill is skipped on resume
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="train-watch", daemon=True).start()
    adapter = _read_reports(child, on_progress)
    code = child.wait()
    if stopped.is_set():
        raise TrainingCancelled("training stopped on request; it resumes from its last checkpoint")
    return _adapter_or_failure(code, adapter, log_path)
