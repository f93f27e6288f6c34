"""The README.md cards of what leaves the project: an exported adapter or merged model, and a
dataset build pushed to the Hub. A card is YAML metadata the Hub reads, then Markdown for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub.utils import HFValidationError, validate_repo_id

from tracewheel.core.chat import ChatFormat
from tracewheel.core.dataset_layout import Manifest
from tracewheel.core.evaluation import EvalResult
from tracewheel.trainer.evaluation import Evaluation
from tracewheel.trainer.training_record import TrainingRecord

CARD = "README.md"
_FIGURES = ("tasks", "success_rate", "valid_tool_call_rate", "right_tool_rate", "mean_steps", "mean_tokens")


@dataclass(frozen=True)
class ModelCardFacts:
    """What a model card states.

    Attributes:
        name: the adapter's name (the trainer's job id).
        base_model: the base model folder or id it was trained on.
        record: what the adapter folder says it was trained from; None when it has no record.
        evaluation: the held-out evaluation of the adapter and its base model; None when not evaluated.
        chat: the serving chat format (template family and the vLLM parsers).
        merged_dtype: the dtype of a merged export; None for an adapter export.
        lora_rank: the adapter's rank (vLLM's --max-lora-rank).
    """

    name: str
    base_model: str
    record: TrainingRecord | None
    evaluation: Evaluation | None
    chat: ChatFormat
    merged_dtype: str | None = None
    lora_rank: int = 16


def _hub_id(model: str) -> str | None:
    """`model` when it is a Hub repository id and not a folder here, else None (a card's
    `base_model` metadata must name a Hub repository)."""
    if "/" not in model or Path(model).exists():
        return None
    try:
        validate_repo_id(model)
    except HFValidationError:
        return None
    return model


def _front_matter(metadata: dict[str, object]) -> str:
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def _evaluation_lines(evaluation: Evaluation | None) -> list[str]:
    if evaluation is None:
        return ["Not evaluated: the trainer ran without an agent to evaluate on (`TW_TRAINER_AGENT_ADDRESS`)."]
    rows: list[tuple[str, EvalResult]] = [
        ("this adapter", evaluation.metrics),
        ("base model", evaluation.baseline_metrics),
    ]
    lines = [f"Held-out suite `{evaluation.metrics.suite}`:", "", "| model | " + " | ".join(_FIGURES) + " |"]
    lines.append("|---" * (len(_FIGURES) + 1) + "|")
    for label, result in rows:
        cells = [f"{value:.3f}" if isinstance(value := getattr(result, f), float) else str(value) for f in _FIGURES]
        lines.append(f"| {label} ({result.model}) | " + " | ".join(cells) + " |")
    return lines


def _serve_command(facts: ModelCardFacts) -> str:
    parsers = (
        f"--enable-auto-tool-choice --tool-call-parser {facts.chat.tool_call_parser} "
        f"--reasoning-parser {facts.chat.reasoning_parser}"
    )
    if facts.merged_dtype is not None:
        return f"vllm serve /path/to/this/folder {parsers}"
    return (
        f"vllm serve {facts.base_model} --enable-lora --max-lora-rank {facts.lora_rank} "
        f"--lora-modules {facts.name}=/path/to/this/folder {parsers}"
    )


def model_card(facts: ModelCardFacts) -> str:
    """README.md of an exported adapter (`merged_dtype` None) or merged model."""
    record = facts.record
    metadata: dict[str, object] = {"library_name": "transformers" if facts.merged_dtype else "peft"}
    if hub_id := _hub_id(facts.base_model):
        metadata["base_model"] = hub_id
    metadata["tags"] = ["tracewheel", "lora", "tool-calling", *(["merged"] if facts.merged_dtype else [])]
    kind = f"merged into its base model ({facts.merged_dtype} safetensors)" if facts.merged_dtype else "LoRA adapter"
    lines = [
        f"# {facts.name}",
        "",
        f"A tool-using agent's LoRA adapter trained by tracewheel, {kind}.",
        "",
        f"- Adapter: `{facts.name}`",
        f"- Base model: `{facts.base_model}`",
        f"- Dataset version: `{record.dataset_version or 'not recorded'}`" if record else "- Dataset: not recorded",
        f"- Chat template: the {facts.chat.family or 'base tokenizer'}'s serving template (chat_template.jinja)",
    ]
    if record is not None:
        eval_loss = "not computed" if record.eval_loss is None else f"{record.eval_loss:.4f}"
        train_loss = "not recorded" if record.train_loss is None else f"{record.train_loss:.4f}"
        lines.append(f"- Training: {record.global_step} steps on {record.train_rows} rows, train loss {train_loss}, "
                     f"eval loss {eval_loss}")  # fmt: skip
    lines += ["", "## Evaluation", "", *_evaluation_lines(facts.evaluation), "", "## Serving", "", "```"]
    lines += [_serve_command(facts), "```", "", "## Recipe", ""]
    if record is None:
        lines.append("Not recorded (the adapter folder has no training.json).")
    else:
        lines += ["```yaml", yaml.safe_dump(record.recipe, sort_keys=True).rstrip(), "```"]
    return _front_matter(metadata) + "\n" + "\n".join(lines) + "\n"


def dataset_card(manifest: Manifest, splits: dict[str, str]) -> str:
    """README.md of a dataset build pushed to the Hub: the `datasets` configuration of its splits
    (`split -> file in the repo`), the TRL row format, and the build's manifest."""
    metadata = {
        "configs": [
            {"config_name": "default", "data_files": [{"split": split, "path": path} for split, path in splits.items()]}
        ],
        "tags": ["tracewheel", "tool-calling", "trl", "sft"],
    }
    rows = ", ".join(f"{split}: {getattr(manifest.rows, split, 0)} rows" for split in splits)
    lines = [
        f"# tracewheel dataset {manifest.version or '(no version)'}",
        "",
        f"Agent traces curated and unrolled into supervised fine-tuning rows ({rows}).",
        "",
        "Each row is TRL's conversational format with tools: `messages` (OpenAI chat messages; an "
        "assistant turn's `reasoning_content` and `tool_calls`, arguments as JSON strings) and `tools` "
        "(the OpenAI function tools as one JSON string, which TRL's SFTTrainer parses per row). The "
        "rows of one trace are all in the same split.",
        "",
        f"Base model: `{manifest.base_model or 'not recorded'}`; training template sha256: "
        f"`{manifest.template_sha256 or 'not recorded'}`.",
        "",
        "## Manifest",
        "",
        "```json",
        json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False),
        "```",
    ]
    return _front_matter(metadata) + "\n" + "\n".join(lines) + "\n"
