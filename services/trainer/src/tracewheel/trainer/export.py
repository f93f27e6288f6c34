"""Exports of a trained adapter (domain: no grpc/nats).

- `export_adapter`: the adapter folder as it is served with `--enable-lora` (weights, config,
  tokenizer with the serving chat template) and a model card.
- `export_merged`: the adapter merged into its base model (PEFT `merge_and_unload`) as a 16-bit
  safetensors folder with the tokenizer, the serving chat template (`chat_template.jinja`, as
  transformers 5 saves it) and a model card: a plain model folder that `vllm serve DIR` and
  `AutoModelForCausalLM.from_pretrained(DIR)` take.

The card (cards.py) says the base model, the adapter, the dataset version and recipe (the
adapter's `training.json`, training_record.py) and the held-out evaluation (the job's
`eval.json`, beside the adapter folder). The serving template is the base model family's
(`tracewheel.core.chat`), else the base tokenizer's own: the adapter folder carries the
*training* template, which only training needs. An export is written beside its target and
renamed into place (`tracewheel.core.files.staging_dir`): a failed export leaves nothing, and a
target that is not empty is refused.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracewheel.core.chat import ChatFormat, resolve_chat_format
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.files import staging_dir
from tracewheel.trainer.cards import CARD, ModelCardFacts, model_card
from tracewheel.trainer.evaluation import Evaluation, read_evaluation
from tracewheel.trainer.jobs import Job, Runner, RunOutput
from tracewheel.trainer.train import Progress
from tracewheel.trainer.trained_rows import TRAINED_ROWS
from tracewheel.trainer.training_record import TrainingRecord, read_training_record

log = logging.getLogger(__name__)

EXPORT_DTYPES = ("bfloat16", "float16", "float32")
"""What a merged export is saved in: bfloat16 (the default, what vLLM serves Qwen3 in), float16,
or float32 (exact, for checks)."""
MERGED = "merged"
"""`<job dir>/merged/`: where a job's merged export goes (recipe `export_merged`)."""
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ExportError(InvalidArgument):
    """An export cannot be made as asked: the target is not empty, the adapter or its base model
    is missing, or they do not fit together; the message says what to change."""


@dataclass(frozen=True)
class ExportSource:
    """A trained adapter and its base model, with what the card says about them.

    Attributes:
        name: the adapter's name (the trainer's job id).
        adapter_dir: the PEFT adapter folder.
        base_model_dir: the base model folder it merges into.
        record: the adapter's `training.json`; None when it has none.
        evaluation: the job's `eval.json`; None when not evaluated.
    """

    name: str
    adapter_dir: Path
    base_model_dir: Path
    record: TrainingRecord | None
    evaluation: Evaluation | None

    def adapter_config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.adapter_dir / ADAPTER_FILES[0]).read_text(encoding="utf-8"))
        return config


def export_source(name: str, adapter_dir: Path, base_model_dir: Path | None = None) -> ExportSource:
    """The adapter at `adapter_dir` and its base model: `base_model_dir`, else the folder its
    training record names, else its adapter_config.json's `base_model_name_or_path`.

    Raises:
        ExportError: the folder is not a PEFT adapter, or the base model is not a model folder here.
        InvalidArgument: the adapter's training.json or its job's eval.json is not valid.
    """
    missing = [file for file in ADAPTER_FILES if not (adapter_dir / file).is_file()]
    if missing:
        raise ExportError(f"{adapter_dir} is not a PEFT adapter folder (no {', '.join(missing)})")
    record = read_training_record(adapter_dir)
    if base_model_dir is None:
        config = json.loads((adapter_dir / ADAPTER_FILES[0]).read_text(encoding="utf-8"))
        base_model_dir = Path(record.base_model if record else config.get("base_model_name_or_path") or "")
    if not (base_model_dir / "config.json").is_file():
        raise ExportError(
            f"the base model of {name} ({base_model_dir}) is not a model folder here; name it with --base-model DIR"
        )
    try:
        evaluation = read_evaluation(adapter_dir.parent)
    except ValueError as exc:
        raise InvalidArgument(f"{adapter_dir.parent / 'eval.json'} is not a valid evaluation: {exc}") from None
    return ExportSource(name, adapter_dir, base_model_dir, record, evaluation)


def check_empty_target(out: Path) -> None:
    """Raises: ExportError: `out` exists and is a file or a folder with something in it."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} is not empty; export to a new or empty folder")


def _serving_tokenizer(source: ExportSource) -> tuple[Any, ChatFormat]:
    """The tokenizer the export is served with (the adapter's, else the base model's) carrying the
    serving chat template, and the chat format it follows.

    Raises:
        ExportError: neither the base model's family nor its tokenizer gives a serving template.
    """
    from transformers import AutoTokenizer

    chat = resolve_chat_format(str(source.base_model_dir))
    folder = source.adapter_dir if (source.adapter_dir / "tokenizer_config.json").is_file() else source.base_model_dir
    tokenizer = AutoTokenizer.from_pretrained(folder)
    template = chat.serving_template or AutoTokenizer.from_pretrained(source.base_model_dir).chat_template
    if not template:
        raise ExportError(
            f"no serving chat template for {source.base_model_dir}: it is in no family tracewheel.core.chat knows "
            "and its tokenizer has none"
        )
    tokenizer.chat_template = template
    return tokenizer, chat


def _facts(source: ExportSource, chat: ChatFormat, merged_dtype: str | None) -> ModelCardFacts:
    base = source.record.base_model if source.record else str(source.base_model_dir)
    rank = int(source.adapter_config().get("r", 16))
    return ModelCardFacts(source.name, base, source.record, source.evaluation, chat, merged_dtype, rank)


def export_adapter(source: ExportSource, out: Path) -> Path:
    """The adapter folder with the serving chat template and a model card, at `out`.

    Raises:
        ExportError: `out` is not empty.
        OSError: `out` cannot be written (nothing is left there).
    """
    check_empty_target(out)
    tokenizer, chat = _serving_tokenizer(source)
    with staging_dir(out) as staging:
        for path in source.adapter_dir.iterdir():
            if path.is_file() and path.name not in (CARD, TRAINED_ROWS):
                shutil.copy2(path, staging / path.name)
        tokenizer.save_pretrained(staging)
        (staging / CARD).write_text(model_card(_facts(source, chat, None)), encoding="utf-8")
    log.info("exported adapter %s to %s", source.name, out)
    return out


def merge(source: ExportSource, dtype: str = "bfloat16") -> Any:
    """The base model in `dtype` with the adapter merged into its weights (a plain transformers model).

    Raises:
        ExportError: `dtype` is not one of EXPORT_DTYPES, or the adapter does not fit the base model.
    """
    if dtype not in EXPORT_DTYPES:
        raise ExportError(f"dtype {dtype!r} is not one of {', '.join(EXPORT_DTYPES)}")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(source.base_model_dir, dtype=getattr(torch, dtype))
    try:
        model = PeftModel.from_pretrained(base, str(source.adapter_dir))
    except (RuntimeError, ValueError, KeyError) as exc:  # shape mismatches, unknown target modules
        raise ExportError(
            f"adapter {source.name} does not fit base model {source.base_model_dir}: {str(exc).splitlines()[0]}"
        ) from None
    return model.merge_and_unload()


def export_merged(source: ExportSource, out: Path, dtype: str = "bfloat16") -> Path:
    """The adapter merged into its base model, saved as `dtype` safetensors with the tokenizer, the
    serving chat template and a model card, at `out`.

    Raises:
        ExportError: `out` is not empty, `dtype` is unknown, or the adapter does not fit the base model.
        OSError: `out` cannot be written (nothing is left there).
    """
    check_empty_target(out)
    tokenizer, chat = _serving_tokenizer(source)
    model = merge(source, dtype)
    with staging_dir(out) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / CARD).write_text(model_card(_facts(source, chat, dtype)), encoding="utf-8")
    log.info("exported %s merged into %s (%s) to %s", source.name, source.base_model_dir, dtype, out)
    return out


def export_on_success(runner: Runner) -> Runner:
    """`runner`, then each job's adapter merged into `<job dir>/merged/` (bf16; recipe
    `export_merged`). Runs after the evaluation, so the card has it; a job resumed after its export
    does not export again, and a failed export fails the job (its adapter stays).
    """

    def run(job: Job, on_progress: Any, should_stop: Any) -> RunOutput:
        output = runner(job, on_progress, should_stop)
        if isinstance(output, str):
            output = RunOutput(output)
        adapter_dir = Path(output.adapter_path)
        target = adapter_dir.parent / MERGED
        if not (target / "config.json").is_file():
            on_progress(Progress(0, 0, float("nan"), 0.0, 0.0, phase="exporting"))
            export_merged(export_source(job.id, adapter_dir), target)
        return output

    return run
