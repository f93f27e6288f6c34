"""The base model's side of a training run: its tokenizer with the training template, the row
length, and the refusal of a dataset built for another tokenizer or template (domain: no grpc/nats).

The dataset service records in the manifest the tokenizer fingerprint and the training template's
hash it rendered the rows with (`tracewheel.core.base_model.tokenizer_sha256`,
`tracewheel.core.chat.template_sha256`); the trainer computes both for what it trains with and
refuses a dataset whose recorded ones differ. The template is resolved the same way on both sides
(`resolve_chat_format`: the base model's family, unless a setting names one). A hand-made dataset
that records neither is trained as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracewheel.core.base_model import default_max_length, tokenizer_sha256
from tracewheel.core.chat import (
    ChatTemplateError,
    require_generation_markers,
    resolve_chat_format,
    template_label,
    template_sha256,
)
from tracewheel.core.dataset_layout import Manifest
from tracewheel.core.errors import FailedPrecondition
from tracewheel.trainer.recipe import Recipe


class DatasetMismatch(FailedPrecondition):
    """The dataset was built for another tokenizer or chat template than the trainer trains with."""


def resolve_chat_template(recipe: Recipe, base_model_dir: Path, current: str | None) -> str:
    """The training template text: `recipe.chat_template` (see Recipe), else the base model
    family's, else the tokenizer's own (`current`).

    Raises:
        UnknownTemplateError: `recipe.chat_template` is neither a shipped name nor a file.
        ChatTemplateError: there is no template, or it has no {% generation %} markers.
    """
    setting = "recipe chat_template"
    chat = resolve_chat_format(str(base_model_dir), training=recipe.chat_template, setting=setting)
    template = chat.training_template or current
    if not template:
        raise ChatTemplateError(f"the base model's tokenizer has no chat template; set {setting}")
    require_generation_markers(template, setting)
    return template


def load_tokenizer(base_model_dir: Path, recipe: Recipe) -> Any:
    """The base model's tokenizer with the training template as its chat template.

    Raises:
        FailedPrecondition: `base_model_dir` is not an HF model folder.
        UnknownTemplateError, ChatTemplateError: see `resolve_chat_template`.
    """
    from transformers import AutoTokenizer

    if not (base_model_dir / "config.json").exists():
        raise FailedPrecondition(f"base model {base_model_dir} is not an HF model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    tokenizer.chat_template = resolve_chat_template(recipe, base_model_dir, tokenizer.chat_template)
    return tokenizer


def training_max_length(manifest: Manifest, base_model_dir: Path) -> int:
    """The longest row trained: the one the dataset was built with (TW_DATASET_MAX_LENGTH, in its
    manifest), else the base model's context (`core.base_model.default_max_length`)."""
    return manifest.max_length or default_max_length(base_model_dir)


def check_dataset_fits(manifest: Manifest, tokenizer: Any, dataset: str, base_model_dir: Path) -> None:
    """Refuses a dataset whose recorded tokenizer fingerprint or training template is not the
    trainer's (`tokenizer` carries the training template as its chat template).

    Raises:
        DatasetMismatch: names the dataset, both fingerprints or templates with the base models,
            and what to set.
    """
    built_for = manifest.base_model or "a base model it does not name"
    if manifest.tokenizer_sha256:
        ours = tokenizer_sha256(tokenizer)
        if ours != manifest.tokenizer_sha256:
            raise DatasetMismatch(
                f"dataset {dataset} was tokenized for {built_for} (tokenizer sha256 {manifest.tokenizer_sha256[:12]}),"
                f" but the trainer trains {base_model_dir} (tokenizer sha256 {ours[:12]}): its token ids would mean"
                " other tokens. Build the dataset for the model the trainer trains (TW_DATASET_BASE_MODEL, the"
                " folder inference serves), or train the dataset's model (TW_TRAINER_BASE_MODEL_DIR)"
            )
    if manifest.template_sha256:
        ours = template_sha256(tokenizer.chat_template)
        if ours != manifest.template_sha256:
            raise DatasetMismatch(
                f"dataset {dataset} was rendered with chat template {template_label(manifest.template_sha256)} for"
                f" {built_for}, but the trainer trains {base_model_dir} with {template_label(ours)}. Set the same"
                " training template on both sides: the recipe's chat_template (TW_RECIPE_CHAT_TEMPLATE) and"
                " TW_DATASET_CHAT_TEMPLATE, or leave both unset for the base model family's"
            )
