"""LoRA on the last N decoder layers only: the peft arguments, and a real adapter built with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.trainer.data import load_training_data
from tracewheel.trainer.lora_layers import lora_targets
from tracewheel.trainer.recipe import Recipe, RecipeError
from tracewheel.trainer.train import build_trainer, train

NAMES = [
    f"model.layers.{i}.{part}" for i in range(4) for part in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")
] + ["lm_head"]


def test_without_lora_layers_the_recipes_targets_pass_through() -> None:
    assert lora_targets(NAMES, "all-linear", None) == {"target_modules": "all-linear"}
    assert lora_targets(NAMES, ["q_proj"], None) == {"target_modules": ["q_proj"]}


def test_the_last_layers_get_every_linear_leaf_or_the_named_ones() -> None:
    assert lora_targets(NAMES, "all-linear", 2) == {
        "target_modules": ["down_proj", "q_proj", "v_proj"],  # never the lm_head, outside the layers
        "layers_to_transform": [2, 3],
    }
    assert lora_targets(NAMES, ["v_proj", "o_proj"], 1) == {"target_modules": ["v_proj"], "layers_to_transform": [3]}
    assert lora_targets(NAMES, "all-linear", 9)["layers_to_transform"] == [0, 1, 2, 3]


def test_a_model_without_numbered_layers_is_refused() -> None:
    with pytest.raises(RecipeError, match="numbered decoder layers"):
        lora_targets(["encoder.proj", "lm_head"], "all-linear", 2)


def test_targets_a_layer_list_cannot_narrow_are_refused() -> None:
    with pytest.raises(RecipeError, match="'all-linear' or a list of names"):
        lora_targets(NAMES, r".*q_proj", 2)
    with pytest.raises(RecipeError, match="no module of target_modules"):
        lora_targets(NAMES, ["gate_proj"], 2)


def test_an_adapter_on_the_last_layer_trains_and_saves_only_that_layer(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    recipe = tiny_recipe.model_copy(update={"lora_layers": 1, "eval": False})
    trainer = build_trainer(load_training_data(dataset_dir), tiny_model_dir, tmp_path / "probe", recipe, [])
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in name for name in trainable)

    result = train(dataset_dir, tiny_model_dir, tmp_path / "run", recipe)
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1]
    from safetensors import safe_open

    with safe_open(str(result.adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        assert weights.keys() and all(".layers.1." in key for key in weights.keys())  # noqa: SIM118
