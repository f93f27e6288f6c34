"""Prefix-tree rows: the attention mask, the collator, and a packed row's loss equal to its rows' losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tracewheel.trainer.data import load_training_data
from tracewheel.trainer.loss import IGNORE
from tracewheel.trainer.prefix_tree import TREE_MASK_KEY, PrefixTreeCollator, tree_attention_mask
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import build_trainer, train

from .conftest import agent_row, write_dataset


def test_each_token_attends_to_itself_and_its_ancestors_only() -> None:
    # 0 1 2 form the first row; 3 4 continue from 1 (a second row sharing tokens 0 and 1)
    mask = tree_attention_mask([-1, 0, 1, 1, 3])
    assert mask.int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 0, 1, 0],
        [1, 1, 0, 1, 1],
    ]


def test_a_parent_after_its_token_is_refused() -> None:
    with pytest.raises(ValueError, match=r"parents\[1\] = 3"):
        tree_attention_mask([-1, 3, 1, 2])


def test_the_collator_pads_and_lets_padding_attend_to_itself() -> None:
    rows = [
        {"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7], "position_ids": [0, 1, 1], "parents": [-1, 0, 0]},
        {"input_ids": [5], "labels": [5], "position_ids": [0], "parents": [-1]},
    ]
    batch = PrefixTreeCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [5, IGNORE, IGNORE]]
    assert batch["position_ids"].tolist() == [[0, 1, 1], [0, 0, 0]]
    mask = batch[TREE_MASK_KEY]
    assert mask.shape == (2, 1, 3, 3)
    assert mask[0, 0].int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert mask[1, 0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def _rows(tokenizer) -> tuple[list[int], list[int], list[int]]:  # type: ignore[no-untyped-def]
    """Two rows sharing a prompt: its tokens, then each row's own tokens (all trained)."""
    shared = tokenizer.encode("<|im_start|>user\nOpen the shop and tell me the title.<|im_end|>\n")
    first = tokenizer.encode("<|im_start|>assistant\nThe title is Shop.<|im_end|>")
    second = tokenizer.encode("<|im_start|>assistant\nIt is called Shop, I think.<|im_end|>")
    return shared, first, second


@pytest.fixture
def tree_dataset(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """One packed row: the shared prompt once, then both continuations (the first token of each unlabelled)."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    shared, first, second = _rows(AutoTokenizer.from_pretrained(tiny_model_dir))
    ids = shared + first + second
    start = len(shared) + len(first)
    parents = [*range(-1, start - 1), len(shared) - 1, *range(start, len(ids) - 1)]
    positions = [*range(start), *range(len(shared), len(shared) + len(second))]
    labels = [IGNORE] * len(shared) + [IGNORE, *first[1:], IGNORE, *second[1:]]
    columns = {"input_ids": [ids], "labels": [labels], "position_ids": [positions], "parents": [parents]}
    target = write_dataset(tmp_path / "ds", [agent_row(0)], [])
    DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(str(target / "hf"))
    return target


def test_a_packed_rows_loss_is_the_loss_of_its_rows_each_in_its_own_context(
    tiny_model_dir: Path, tree_dataset: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    data = load_training_data(tree_dataset)
    assert data.prefix_tree
    trainer = build_trainer(data, tiny_model_dir, tmp_path, tiny_recipe.for_device(False), [])
    batch = trainer.data_collator([trainer.train_dataset[0]])
    packed = trainer.compute_loss(trainer.model, dict(batch)).item()

    shared, first, second = _rows(trainer.processing_class)
    total, count = 0.0, 0
    with torch.no_grad():
        for own in (first, second):
            ids = torch.tensor([shared + own])
            logits = trainer.model(input_ids=ids).logits[0, len(shared) : -1]
            targets = ids[0, len(shared) + 1 :]
            total += torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
            count += len(own) - 1
    assert packed == pytest.approx(total / count, rel=1e-4)


def test_training_on_prefix_tree_rows_runs_end_to_end(
    tiny_model_dir: Path, tree_dataset: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    result = train(tree_dataset, tiny_model_dir, tmp_path / "out", tiny_recipe.model_copy(update={"eval": False}))
    assert result.global_step == 2 and result.tokens_seen > 0
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
