"""LoRA SFT of a base model on a dataset directory with TRL's SFTTrainer (domain: no grpc/nats).

Layout of `output_dir`: `checkpoints/checkpoint-N` (every `recipe.save_steps`; a run resumes
from the last complete one), `loss.jsonl` (the loss curve and recipe, loss_log.py),
`tensorboard/` (event files, when tensorboard is installed) and `adapter/`
(adapter_model.safetensors + adapter_config.json + tokenizer), written atomically at the end:
a reader never sees a half-written adapter.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracewheel.core.errors import TracewheelError
from tracewheel.trainer.base_model import (
    check_dataset_fits,
    load_tokenizer,
    resolve_chat_template,  # noqa: F401 - imported from here by callers
    training_max_length,
)
from tracewheel.trainer.data import TrainingData, load_training_data, read_dataset_manifest
from tracewheel.trainer.loss_log import loss_log_callback
from tracewheel.trainer.qlora import require_device
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.sft_trainer import (  # noqa: F401 - build_sft_config is imported from here by callers
    CHECKPOINTS,
    build_sft_config,
    build_trainer,
)
from tracewheel.trainer.trained_rows import read_trained_rows, row_keys, warm_start_rows, write_trained_rows
from tracewheel.trainer.training_record import TrainingRecord, write_training_record

log = logging.getLogger(__name__)

ADAPTER = "adapter"
TENSORBOARD = "tensorboard"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class TrainingCancelled(TracewheelError):
    """The run was asked to stop (`should_stop` returned True); its last checkpoint remains."""


@dataclass(frozen=True)
class Progress:
    """One progress report; `phase` is training | evaluating | done."""

    step: int
    total_steps: int
    loss: float
    tokens_per_second: float
    eta_s: float
    phase: str = "training"


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    global_step: int
    resumed_from_step: int
    train_loss: float
    eval_loss: float | None
    tokens_seen: int
    runtime_s: float
    train_rows: int = 0  # rows trained on (a warm start on new rows: those and the replayed ones)


ProgressCallback = Callable[[Progress], None]


def last_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete checkpoint (trainer_state.json is written last), or None."""
    if not checkpoints_dir.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in checkpoints_dir.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / "trainer_state.json").exists()
    ]
    return max(complete)[1] if complete else None


def _make_progress_callback(on_progress: ProgressCallback | None, should_stop: Callable[[], object] | None) -> Any:
    from transformers import TrainerCallback

    class ProgressReporter(TrainerCallback):  # type: ignore[misc]
        """Reports step, loss, tokens/s and ETA; stops at the next step when asked."""

        def __init__(self) -> None:
            self.loss = float("nan")
            self.started: tuple[float, int, int] | None = None  # (time, step, tokens) at (re)start

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = (time.monotonic(), state.global_step, state.num_input_tokens_seen)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if should_stop is not None and should_stop():
                control.should_training_stop = True
            if on_progress is None or self.started is None:
                return
            began, step0, tokens0 = self.started
            elapsed = max(time.monotonic() - began, 1e-9)
            steps_done = max(state.global_step - step0, 1)
            on_progress(
                Progress(
                    step=state.global_step,
                    total_steps=state.max_steps,
                    loss=self.loss,
                    tokens_per_second=(state.num_input_tokens_seen - tokens0) / elapsed,
                    eta_s=(state.max_steps - state.global_step) * elapsed / steps_done,
                )
            )

    return ProgressReporter()


def _tensorboard_callbacks(output_dir: Path) -> list[Any]:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: logs only go to the progress callback
        return []
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(output_dir / TENSORBOARD)))]


def save_adapter_atomically(
    model: Any,
    tokenizer: Any,
    adapter_dir: Path,
    trained_rows: Iterable[str] | None = None,
    record: TrainingRecord | None = None,
) -> Path:
    """Writes the adapter (with the keys of the rows it was trained on, trained_rows.py, and what
    it was trained from, training_record.py) beside `adapter_dir` and renames it into place
    (replacing an old one)."""
    staging = Path(tempfile.mkdtemp(prefix=".adapter-", dir=adapter_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if trained_rows is not None:
            write_trained_rows(staging, trained_rows)
        if record is not None:
            write_training_record(staging, record)
        if adapter_dir.exists():
            old = adapter_dir.with_name(f".{adapter_dir.name}-old-{time.time_ns()}")
            adapter_dir.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(adapter_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return adapter_dir


def _run_recipe(recipe: Recipe, init_adapter: Path | None) -> Recipe:
    """The recipe for this device; a warm start's epochs and learning rate in place of the first run's.

    Raises:
        TracewheelError: the recipe needs a device this machine lacks (`qlora.require_device`).
    """
    import torch

    recipe = recipe.for_device(torch.cuda.is_available())
    require_device(recipe, torch.cuda.is_available())
    if init_adapter is None:
        return recipe
    return recipe.model_copy(
        update={
            "num_train_epochs": recipe.warm_start_epochs or recipe.num_train_epochs,
            "learning_rate": recipe.warm_start_learning_rate or recipe.learning_rate,
        }
    )


def _training_rows(
    dataset_dir: Path, base_model_dir: Path, recipe: Recipe, init_adapter: Path | None
) -> tuple[TrainingData, Any, set[str] | None, list[str]]:
    """The data to train on, the tokenizer, the rows the init adapter was trained on (None: unknown)
    and the keys of the rows chosen (a warm start on new rows: those and a replayed sample)."""
    manifest = read_dataset_manifest(dataset_dir)
    tokenizer = load_tokenizer(base_model_dir, recipe)
    check_dataset_fits(manifest, tokenizer, manifest.version or str(dataset_dir), base_model_dir)
    data = load_training_data(dataset_dir, training_max_length(manifest, base_model_dir))
    seen = read_trained_rows(init_adapter) if init_adapter is not None else set()
    keys = row_keys(data.train)  # hashed once: to select a warm start's rows and for the adapter's record
    if init_adapter is not None and recipe.warm_start_rows == "new":
        chosen = warm_start_rows(keys, seen, recipe.warm_start_replay, recipe.seed, str(dataset_dir))
        data = dataclasses.replace(data, train=data.train.select(chosen))
        keys = [keys[index] for index in chosen]
    return data, tokenizer, seen, keys


def _fit(trainer: Any, output_dir: Path, should_stop: Callable[[], object] | None) -> tuple[Any, int]:
    """Runs `trainer.train` from the last checkpoint in `output_dir` (if any): its output and the step resumed from.

    Raises:
        TrainingCancelled: `should_stop` returned True before the last step.
    """
    checkpoint = last_checkpoint(output_dir / CHECKPOINTS)
    resumed_from = int(_CHECKPOINT.match(checkpoint.name).group(1)) if checkpoint else 0  # type: ignore[union-attr]
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if should_stop is not None and should_stop() and trainer.state.global_step < trainer.state.max_steps:
        raise TrainingCancelled(f"cancelled at step {trainer.state.global_step}")
    return output, resumed_from


def _final_eval_loss(trainer: Any, train_loss: float, progress_callback: ProgressCallback | None) -> float | None:
    """The eval split's loss after training (reported as the evaluating phase); None without one."""
    if trainer.eval_dataset is None:
        return None
    if progress_callback is not None:
        step = trainer.state.global_step
        progress_callback(Progress(step, trainer.state.max_steps, train_loss, 0.0, 0.0, "evaluating"))
    return float(trainer.evaluate()["eval_loss"])


def _training_record(
    dataset_dir: Path,
    base_model_dir: Path,
    data: TrainingData,
    recipe: Recipe,
    init_adapter: Path | None,
    trainer: Any,
    output: Any,
    eval_loss: float | None,
) -> TrainingRecord:
    """What the adapter of this run was trained from and how (training_record.py)."""
    return TrainingRecord(
        base_model=str(base_model_dir),
        dataset_version=data.manifest.version,
        dataset_path=str(dataset_dir),
        recipe=recipe.model_dump(mode="json"),
        global_step=trainer.state.global_step,
        train_loss=float(output.training_loss),
        eval_loss=eval_loss,
        train_rows=len(data.train),
        init_adapter=str(init_adapter or ""),
    )


def _save_run_adapter(trainer: Any, output_dir: Path, trained: set[str] | None, record: TrainingRecord) -> Path:
    """Writes the trained adapter to `output_dir/adapter` (one process of a torchrun run does)."""
    adapter_dir = output_dir / ADAPTER
    if trainer.is_world_process_zero():  # under torchrun one process writes the adapter
        save_adapter_atomically(trainer.model, trainer.processing_class, adapter_dir, trained, record)
    return adapter_dir


def train(
    dataset_dir: Path,
    base_model_dir: Path,
    output_dir: Path,
    recipe: Recipe,
    progress_callback: ProgressCallback | None = None,
    should_stop: Callable[[], object] | None = None,
    init_adapter: Path | None = None,
) -> TrainResult:
    """Fits a LoRA adapter; resumes from the last checkpoint in `output_dir` if there is one.

    With `init_adapter` (a warm start) the adapter begins as that one's weights and trains
    `recipe.warm_start_epochs` epochs at `recipe.warm_start_learning_rate` (num_train_epochs and
    learning_rate when unset), on every row or (`recipe.warm_start_rows = "new"`) on the rows the
    init adapter was not trained on plus a replayed sample (trained_rows.py). The adapter is saved
    with the keys of every row it has been trained on.

    Raises:
        DatasetError: the dataset is missing, corrupt or has untrainable rows, or a warm start on
            new rows finds none.
        DatasetMismatch: the dataset was built for another tokenizer or training template.
        ChatTemplateError: the chat template cannot mask assistant tokens.
        TrainingCancelled: `should_stop` returned True (checkpoints are kept).
    """
    recipe = _run_recipe(recipe, init_adapter)
    data, tokenizer, seen, keys = _training_rows(dataset_dir, base_model_dir, recipe, init_adapter)
    output_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        _make_progress_callback(progress_callback, should_stop),
        loss_log_callback(output_dir, recipe),
        *_tensorboard_callbacks(output_dir),
    ]
    trainer = build_trainer(data, base_model_dir, output_dir, recipe, callbacks, init_adapter, tokenizer=tokenizer)
    started = time.monotonic()
    output, resumed_from = _fit(trainer, output_dir, should_stop)
    eval_loss = _final_eval_loss(trainer, output.training_loss, progress_callback)
    record = _training_record(dataset_dir, base_model_dir, data, recipe, init_adapter, trainer, output, eval_loss)
    # the record is cumulative: an init adapter whose rows are unknown leaves them unknown
    adapter_dir = _save_run_adapter(trainer, output_dir, None if seen is None else seen | set(keys), record)
    return TrainResult(
        adapter_dir=adapter_dir,
        global_step=trainer.state.global_step,
        resumed_from_step=resumed_from,
        train_loss=float(output.training_loss),
        eval_loss=eval_loss,
        tokens_seen=int(trainer.state.num_input_tokens_seen),
        runtime_s=time.monotonic() - started,
        train_rows=len(data.train),
    )
