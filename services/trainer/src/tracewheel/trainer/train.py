"""LoRA SFT of a base model on a dataset directory with TRL's SFTTrainer (domain: no grpc/nats).

Layout of `output_dir`: `checkpoints/checkpoint-N` (every `recipe.save_steps`; a run resumes
from the last complete one), `tensorboard/` (event files, when tensorboard is installed) and
`adapter/` (adapter_model.safetensors + adapter_config.json + tokenizer), written atomically
at the end: a reader never sees a half-written adapter.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
from tracewheel.trainer.data import DatasetError, TrainingData, load_training_data, read_dataset_manifest
from tracewheel.trainer.qlora import lora_config, quantization_config, require_device
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.trained_rows import read_trained_rows, row_keys, warm_start_rows, write_trained_rows
from tracewheel.trainer.training_record import TrainingRecord, write_training_record

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
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


def _load_model_and_tokenizer(base_model_dir: Path, recipe: Recipe, tokenizer: Any = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base_model_dir, recipe)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if recipe.bf16 else torch.float32}
    if recipe.load_in_4bit:
        kwargs["quantization_config"] = quantization_config(recipe)
        if "LOCAL_RANK" in os.environ:  # under torchrun each process quantizes its copy onto its own GPU
            kwargs["device_map"] = {"": int(os.environ["LOCAL_RANK"])}
    return AutoModelForCausalLM.from_pretrained(base_model_dir, **kwargs), tokenizer


def build_sft_config(
    recipe: Recipe,
    output_dir: Path,
    has_eval: bool,
    pretokenized: bool = False,
    prefix_tree: bool = False,
    max_length: int | None = None,
) -> Any:
    """TRL's SFTConfig for a device-resolved recipe (see Recipe.for_device).

    Conversational rows get TRL's assistant_only_loss; pre-tokenized rows bring their own labels;
    prefix-tree rows keep their `position_ids` and `parents` columns for the collator. Rows are
    cut at `max_length` tokens (None: never; pre-tokenized rows longer than it were dropped before).
    """
    from trl import SFTConfig

    evaluate_during = recipe.eval and has_eval and recipe.eval_steps is not None
    return SFTConfig(
        output_dir=str(output_dir / CHECKPOINTS),
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        learning_rate=recipe.learning_rate,
        warmup_steps=recipe.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        per_device_eval_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        max_length=max_length,
        assistant_only_loss=not pretokenized,
        remove_unused_columns=not prefix_tree,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=recipe.eval_steps if evaluate_during else None,
        logging_steps=recipe.logging_steps,
        seed=recipe.seed,
        data_seed=recipe.seed,
        use_cpu=recipe.device == "cpu",
        bf16=bool(recipe.bf16),
        activation_checkpointing=bool(recipe.gradient_checkpointing),  # transformers 5 name
        optim=recipe.optim or "adamw_torch",
        include_num_input_tokens_seen="non_padding",
        report_to="none",  # tensorboard is added as an explicit callback writing to output_dir/tensorboard
        dataset_num_proc=None,
        disable_tqdm=True,
    )


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


def _warm_adapter(model: Any, init_adapter: Path, recipe: Recipe) -> Any:
    """The base model with `init_adapter`'s weights as a trainable LoRA adapter: its own shape (rank,
    targets), the recipe's dropout."""
    from peft import LoraConfig, PeftModel

    config = LoraConfig.from_pretrained(str(init_adapter))
    config.lora_dropout = recipe.lora_dropout
    return PeftModel.from_pretrained(model, str(init_adapter), config=config, is_trainable=True)


def build_trainer(
    data: TrainingData,
    base_model_dir: Path,
    output_dir: Path,
    recipe: Recipe,
    callbacks: list[Any],
    init_adapter: Path | None = None,
    *,
    tokenizer: Any = None,
) -> Any:
    """An SFTTrainer with a LoRA adapter on the base model (tokenizes the data): a new one, or
    `init_adapter`'s weights carried on (a warm start, warm_start.py). Rows are trained up to the
    dataset's max_length (`base_model.training_max_length`); `tokenizer` is one `load_tokenizer` made.

    Raises:
        ChatTemplateError: the chat template cannot mask assistant tokens.
        DatasetError: a row renders with no assistant tokens.
    """
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from tracewheel.trainer.loss import DecisionWeightedSFTTrainer
    from tracewheel.trainer.prefix_tree import PrefixTreeCollator

    model, tokenizer = _load_model_and_tokenizer(base_model_dir, recipe, tokenizer)
    if init_adapter is not None:
        model = _warm_adapter(model, init_adapter, recipe)
    lora = None if init_adapter is not None else lora_config(recipe)
    use_eval = recipe.eval and data.eval is not None
    # pre-tokenized rows (the dataset service's): labelled positions only, weighted decisions (loss.py)
    weights = {
        "decision_weight": recipe.decision_weight,
        "answer_weight": recipe.answer_weight,
    }
    extra: dict[str, Any] = weights if data.pretokenized else {}
    if data.prefix_tree:
        extra["data_collator"] = PrefixTreeCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    try:
        trainer = (DecisionWeightedSFTTrainer if data.pretokenized else SFTTrainer)(
            model=model,
            args=build_sft_config(
                recipe,
                output_dir,
                use_eval,
                data.pretokenized,
                data.prefix_tree,
                training_max_length(data.manifest, base_model_dir),
            ),
            train_dataset=data.train,
            eval_dataset=data.eval if use_eval else None,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
            **extra,
        )
    except RuntimeError as exc:
        if "no assistant tokens" in str(exc):
            raise DatasetError(f"a row renders with no assistant tokens under the training template: {exc}") from None
        raise
    # with tqdm off, transformers prints every log dict to stdout; progress goes to our callback instead
    trainer.remove_callback(PrinterCallback)
    return trainer


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
    import torch

    recipe = recipe.for_device(torch.cuda.is_available())
    require_device(recipe, torch.cuda.is_available())
    if init_adapter is not None:
        recipe = recipe.model_copy(
            update={
                "num_train_epochs": recipe.warm_start_epochs or recipe.num_train_epochs,
                "learning_rate": recipe.warm_start_learning_rate or recipe.learning_rate,
            }
        )
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
    output_dir.mkdir(parents=True, exist_ok=True)
    reporter = _make_progress_callback(progress_callback, should_stop)
    callbacks = [reporter, *_tensorboard_callbacks(output_dir)]
    trainer = build_trainer(data, base_model_dir, output_dir, recipe, callbacks, init_adapter, tokenizer=tokenizer)
    checkpoint = last_checkpoint(output_dir / CHECKPOINTS)
    resumed_from = int(_CHECKPOINT.match(checkpoint.name).group(1)) if checkpoint else 0  # type: ignore[union-attr]
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if should_stop is not None and should_stop() and trainer.state.global_step < trainer.state.max_steps:
        raise TrainingCancelled(f"cancelled at step {trainer.state.global_step}")
    eval_loss = None
    if trainer.eval_dataset is not None:
        if progress_callback is not None:
            step = trainer.state.global_step
            progress_callback(Progress(step, trainer.state.max_steps, output.training_loss, 0.0, 0.0, "evaluating"))
        eval_loss = float(trainer.evaluate()["eval_loss"])
    # the record is cumulative: an init adapter whose rows are unknown leaves them unknown
    trained = None if seen is None else seen | set(keys)
    record = TrainingRecord(
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
    adapter_dir = output_dir / ADAPTER
    if trainer.is_world_process_zero():  # under torchrun one process writes the adapter
        save_adapter_atomically(trainer.model, trainer.processing_class, adapter_dir, trained, record)
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
