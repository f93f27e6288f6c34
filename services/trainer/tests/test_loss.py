"""The loss on pre-tokenized rows: decision tokens found, TRL's loss reproduced, decisions weighted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tracewheel.trainer.data import load_training_data
from tracewheel.trainer.loss import (
    IGNORE,
    DecisionWeightedSFTTrainer,
    answer_mask,
    decision_mask,
    decision_weights,
)
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import build_trainer, train

from .conftest import agent_row, write_dataset

THINK_CLOSE = [9, 8]  # a two-token "</think>"
BLANK = {5}  # "\n"


def _mask(labels: list[list[int]]) -> list[list[int]]:
    found = decision_mask(torch.tensor(labels), THINK_CLOSE, lambda token: token in BLANK)
    return [row.nonzero().squeeze(1).tolist() for row in found]


def test_the_decision_is_the_first_token_after_each_spans_think_block() -> None:
    x = IGNORE
    #          prompt  | <think> \n </think> \n  DECISION ... | prompt | <think></think> \n \n DECISION
    labels = [[x, x, x, 7, 5, 9, 8, 5, 42, 43, 44, x, x, x, 7, 9, 8, 5, 5, 50, 51]]
    assert _mask(labels) == [[8, 19]]


def test_a_span_without_a_think_block_decides_at_its_first_token() -> None:
    x = IGNORE
    assert _mask([[x, 30, 31, x, x, 40, x], [x, x, x, x, x, x, 60]]) == [[1, 5], [6]]


def test_a_span_that_ends_inside_its_think_block_has_no_decision() -> None:
    x = IGNORE
    assert _mask([[x, 7, 5, 9, 8, 5]]) == [[]]


def test_decisions_that_open_no_tool_call_are_answers_and_get_their_own_weight() -> None:
    x = IGNORE
    targets = torch.tensor([[x, 9, 8, 70, 71, 3, x, 9, 8, 42, 43, x, 9, 8, 70, 3]])
    decisions = decision_mask(targets, THINK_CLOSE, lambda token: token in BLANK)
    assert decisions.nonzero()[:, 1].tolist() == [3, 9, 14]
    assert answer_mask(targets, decisions, [70, 71]).nonzero()[:, 1].tolist() == [9, 14]  # 70 alone is no call
    weights = decision_weights(targets, decisions, [70, 71], decision_weight=2.0, answer_weight=5.0)
    assert weights[0, [3, 9, 14]].tolist() == [2.0, 5.0, 5.0] and weights.sum() == 2 + 5 + 5 + 13


@pytest.fixture
def pretokenized_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """Two agent rows tokenized by the training template (as the dataset service writes them)."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = {"input_ids": [], "labels": []}
    for i in range(2):
        row = agent_row(i)
        encoded = tokenizer.apply_chat_template(
            row["messages"],
            tools=json.loads(row["tools"]),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
        rows["input_ids"].append(ids)
        rows["labels"].append([token if kept else IGNORE for token, kept in zip(ids, mask, strict=True)])
    target = write_dataset(tmp_path / "ds", [agent_row(0)], [])
    DatasetDict({"train": Dataset.from_dict(rows), "eval": Dataset.from_dict(rows)}).save_to_disk(str(target / "hf"))
    return target


def _trainer(tiny_model_dir: Path, dataset: Path, recipe: Recipe, tmp_path: Path) -> DecisionWeightedSFTTrainer:
    trainer = build_trainer(load_training_data(dataset), tiny_model_dir, tmp_path, recipe.for_device(False), [])
    assert isinstance(trainer, DecisionWeightedSFTTrainer)
    return trainer


def test_decisions_in_a_rendered_row_are_the_tool_call_and_the_answer(
    tiny_model_dir: Path, pretokenized_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    trainer = _trainer(tiny_model_dir, pretokenized_dir, tiny_recipe, tmp_path)
    labels = torch.tensor([trainer.train_dataset[0]["labels"]])
    found = decision_mask(labels, trainer._think_close, trainer._is_blank)[0]
    decoded = [trainer.processing_class.decode([int(labels[0, i])]) for i in found.nonzero().squeeze(1)]
    assert decoded == ["<", "The"]  # `<tool_call>` of the navigation, then "The title is ..."


def test_with_weight_one_the_loss_is_trls(
    tiny_model_dir: Path, pretokenized_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    trainer = _trainer(tiny_model_dir, pretokenized_dir, tiny_recipe, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ours = trainer.compute_loss(trainer.model, dict(batch))
    theirs = super(DecisionWeightedSFTTrainer, trainer).compute_loss(trainer.model, dict(batch))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-4)
    assert trainer._metrics["train"]["decision_accuracy"] and trainer._metrics["train"]["mean_token_accuracy"]


def test_weighted_loss_is_the_weighted_token_mean_of_the_models_cross_entropy(
    tiny_model_dir: Path, pretokenized_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    plain = _trainer(tiny_model_dir, pretokenized_dir, tiny_recipe, tmp_path / "a")
    weights = {"decision_weight": 4.0, "answer_weight": 9.0}
    recipe = tiny_recipe.model_copy(update=weights)
    weighted = _trainer(tiny_model_dir, pretokenized_dir, recipe, tmp_path / "b")
    batch = plain.data_collator([plain.train_dataset[0]])
    targets = batch["labels"][:, 1:]
    with torch.no_grad():
        logits = plain.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
        decisions = decision_mask(targets, plain._think_close, plain._is_blank)
        answers = answer_mask(targets, decisions, plain._tool_call_open)
        assert int(decisions.sum()) == 2 and int(answers.sum()) == 1  # the navigation, then the answer
        count = int((targets != IGNORE).sum())
        extra = 3.0 * per_token[decisions & ~answers].sum() + 8.0 * per_token[answers].sum()
        expected = (per_token[targets != IGNORE].sum() + extra) / count
        assert weighted.compute_loss(weighted.model, dict(batch)).item() == pytest.approx(expected.item(), rel=1e-4)


def test_weighted_training_runs_end_to_end_with_accumulation_and_eval(
    tiny_model_dir: Path, pretokenized_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    recipe = tiny_recipe.model_copy(
        update={"decision_weight": 10.0, "answer_weight": 30.0, "gradient_accumulation_steps": 2}
    )
    result = train(pretokenized_dir, tiny_model_dir, tmp_path / "out", recipe)
    assert result.global_step == 2 and result.eval_loss is not None and result.eval_loss > 0
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
