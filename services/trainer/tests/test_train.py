"""Training on the tiny model: adapter written and loadable, assistant-only masks, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.core.chat import ChatTemplateError
from tracewheel.trainer.data import DatasetError, load_training_data
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import (
    ADAPTER,
    CHECKPOINTS,
    Progress,
    build_trainer,
    last_checkpoint,
    train,
)

from .conftest import agent_row, write_dataset


def test_training_writes_an_adapter_peft_can_load(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    reports: list[Progress] = []
    result = train(dataset_dir, tiny_model_dir, tmp_path / "out", tiny_recipe, reports.append)

    assert result.global_step == 2 and result.resumed_from_step == 0
    assert result.eval_loss is not None and result.tokens_seen > 0
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
    training = [r for r in reports if r.phase == "training"]
    assert [r.step for r in training] == [1, 2] and reports[-1].phase == "evaluating"
    assert training[-1].tokens_per_second > 0 and training[-1].total_steps == 2 and training[-1].eta_s == 0
    assert last_checkpoint(tmp_path / "out" / CHECKPOINTS).name == "checkpoint-2"
    assert any((tmp_path / "out" / "tensorboard").iterdir())

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), result.adapter_dir)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert json.loads((tmp_path / "out" / ADAPTER / "adapter_config.json").read_text())["r"] == 4


def test_loss_is_only_on_assistant_tokens(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    trainer = build_trainer(
        load_training_data(dataset_dir), tiny_model_dir, tmp_path, tiny_recipe.for_device(False), []
    )
    row = trainer.train_dataset[0]
    # TRL folds the template's assistant_masks into labels: -100 wherever the mask is 0
    tokens = trainer.processing_class
    supervised = tokens.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100])
    ignored = tokens.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == -100])
    assert "The title is Title 0." in supervised and "browser_navigate" in supervised
    assert "Open page 0" in ignored and "You are a browser agent" in ignored and "<tool_response>" in ignored
    assert "Open page" not in supervised and "Title 0\n</tool_response>" not in supervised
    batch = trainer.data_collator([row])
    assert (batch["labels"] == -100).sum() == sum(label == -100 for label in row["labels"])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda d: (d / "manifest.json").write_text('{"version": "x", "train_rows": 3}'), "train_rows: Extra inputs"),
        (lambda d: (d / "train.jsonl").write_text("{not json\n"), "train.jsonl:1: not valid JSON"),
        (
            lambda d: (d / "train.jsonl").write_text(
                json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
            ),
            "no assistant turn",
        ),
        (
            lambda d: (d / "train.jsonl").write_text(json.dumps({**agent_row(0), "tools": "[oops"}) + "\n"),
            "'tools' is not valid JSON",
        ),
    ],
)
def test_bad_dataset_is_a_clear_error(dataset_dir: Path, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    mutate(dataset_dir)
    with pytest.raises(DatasetError, match=reason):
        load_training_data(dataset_dir)


def test_missing_dataset_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_training_data(tmp_path / "nope")


def test_template_without_generation_markers_is_refused(
    tiny_model_dir: Path, tmp_path: Path, tiny_recipe: Recipe
) -> None:
    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    dataset = write_dataset(tmp_path / "ds", [agent_row(0)], [])
    recipe = tiny_recipe.model_copy(update={"chat_template": str(template)})
    with pytest.raises(ChatTemplateError, match="generation"):
        train(dataset, tiny_model_dir, tmp_path / "out", recipe)


def test_pretokenized_hf_split_is_used_with_its_own_labels(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    from datasets import Dataset, DatasetDict

    labels = [-100, -100, -100, 7, 8, -100]
    DatasetDict(
        {"train": Dataset.from_dict({"input_ids": [[1, 2, 3, 7, 8, 2]] * 2, "labels": [labels] * 2})}
    ).save_to_disk(str(dataset_dir / "hf"))
    data = load_training_data(dataset_dir)
    assert data.eval is None and data.train.column_names == ["input_ids", "labels"]
    trainer = build_trainer(data, tiny_model_dir, tmp_path, tiny_recipe.for_device(False), [])
    assert trainer.train_dataset[0]["labels"] == labels  # target-only labels survive TRL


def test_pretokenized_rows_without_labels_are_refused(dataset_dir: Path) -> None:
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict({"input_ids": [[1, 2]], "labels": [[-100, -100]]})}).save_to_disk(
        str(dataset_dir / "hf")
    )
    with pytest.raises(DatasetError, match="every label is -100"):
        load_training_data(dataset_dir)


def test_pretokenized_rows_over_max_length_are_dropped_not_truncated(dataset_dir: Path) -> None:
    from datasets import Dataset, DatasetDict

    short, long = [1, 2, 3], [1, 2, 3, 4, 5, 6]
    DatasetDict(
        {"train": Dataset.from_dict({"input_ids": [short, long], "labels": [[-100, 2, 3], [-100] * 5 + [6]]})}
    ).save_to_disk(str(dataset_dir / "hf"))
    data = load_training_data(dataset_dir, max_length=4)
    assert data.train["input_ids"] == [short]  # the long row is gone whole, not cut before its answer
    with pytest.raises(DatasetError, match="every row is longer than max_length 2"):
        load_training_data(dataset_dir, max_length=2)


def test_the_training_template_is_the_recipes_else_the_tokenizers_own(tiny_recipe: Recipe, tmp_path: Path) -> None:
    from tracewheel.core.chat import TRAINING_TEMPLATE, load_template
    from tracewheel.trainer.train import resolve_chat_template

    (tmp_path / "config.json").write_text('{"model_type": "llama"}')  # in no family of the table
    own = "{% generation %}{{ messages }}{% endgeneration %}"
    keep_own = tiny_recipe.model_copy(update={"chat_template": None})

    assert resolve_chat_template(tiny_recipe, tmp_path, own) == load_template(TRAINING_TEMPLATE)
    assert resolve_chat_template(keep_own, tmp_path, own) == own
    with pytest.raises(ChatTemplateError, match="no chat template; set recipe chat_template"):
        resolve_chat_template(keep_own, tmp_path, None)
