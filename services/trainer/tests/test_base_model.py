"""The trainer's side of the base model: the family's template, the dataset's length, and the
refusal of a dataset built for another tokenizer or template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracewheel.core.base_model import tokenizer_sha256
from tracewheel.core.chat import TRAINING_TEMPLATE, load_template, template_sha256
from tracewheel.core.dataset_layout import Manifest, read_manifest, write_manifest
from tracewheel.trainer.base_model import DatasetMismatch, check_dataset_fits, load_tokenizer, training_max_length
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, train


def built_for(dataset_dir: Path, **recorded: str) -> Path:
    """`dataset_dir` with its manifest recording `recorded` (tokenizer_sha256, template_sha256)."""
    write_manifest(dataset_dir, read_manifest(dataset_dir).model_copy(update=recorded))
    return dataset_dir


def test_the_training_template_is_the_base_model_familys_unless_the_recipe_names_one(tiny_model_dir: Path) -> None:
    # the tiny model carries SmolLM2's template: the family's training template, as the dataset resolves it
    assert load_tokenizer(tiny_model_dir, Recipe(chat_template=None)).chat_template == load_template(TRAINING_TEMPLATE)
    assert load_tokenizer(tiny_model_dir, Recipe(chat_template="qwen3_train")).chat_template == load_template(
        "qwen3_train"
    )


def test_a_dataset_built_for_this_tokenizer_and_template_is_taken(tiny_model_dir: Path, dataset_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir, Recipe())
    fits = Manifest(
        tokenizer_sha256=tokenizer_sha256(tokenizer), template_sha256=template_sha256(tokenizer.chat_template)
    )

    check_dataset_fits(fits, tokenizer, "ds-1", tiny_model_dir)
    check_dataset_fits(Manifest(), tokenizer, "hand-made", tiny_model_dir)  # records neither: not checked


def test_a_dataset_for_another_tokenizer_is_refused_naming_both(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir, Recipe())
    other = Manifest(version="ds-9", base_model="/data/models/Qwen3-4B", tokenizer_sha256="ab" * 32)

    with pytest.raises(DatasetMismatch) as refused:
        check_dataset_fits(other, tokenizer, other.version, tiny_model_dir)

    message = str(refused.value)
    assert "dataset ds-9 was tokenized for /data/models/Qwen3-4B (tokenizer sha256 abababababab)" in message
    assert f"trains {tiny_model_dir} (tokenizer sha256 {tokenizer_sha256(tokenizer)[:12]})" in message
    assert "TW_DATASET_BASE_MODEL" in message and "TW_TRAINER_BASE_MODEL_DIR" in message


def test_a_dataset_rendered_with_another_template_is_refused_before_training(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    qwen3 = template_sha256(load_template("qwen3_train"))
    built_for(dataset_dir, template_sha256=qwen3)

    with pytest.raises(DatasetMismatch) as refused:
        train(dataset_dir, tiny_model_dir, tmp_path / "out", tiny_recipe)

    message = str(refused.value)
    assert re.search(r"rendered with chat template qwen3_train \(sha256 [0-9a-f]{12}\)", message)
    assert re.search(r"with smollm2_tools_train \(sha256 [0-9a-f]{12}\)", message)
    assert "TW_RECIPE_CHAT_TEMPLATE" in message and "TW_DATASET_CHAT_TEMPLATE" in message
    assert not (tmp_path / "out" / ADAPTER).exists()


def test_rows_are_trained_up_to_the_datasets_length_else_the_base_models(tiny_model_dir: Path) -> None:
    assert training_max_length(Manifest(max_length=4096), tiny_model_dir) == 4096
    assert training_max_length(Manifest(), tiny_model_dir) == 8192  # the tiny model's max_position_embeddings
