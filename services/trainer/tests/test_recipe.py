"""Recipe: declared defaults, YAML file, env overrides, device defaults, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracewheel.trainer.recipe import Recipe, RecipeError, load_recipe


def test_without_a_file_or_variables_the_recipe_is_the_declared_defaults() -> None:
    assert load_recipe() == Recipe()


def test_env_overrides_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("lora_r: 8\nmax_steps: 10\n")
    env = {"TW_RECIPE_MAX_STEPS": "20", "TW_RECIPE_TARGET_MODULES": "[q_proj, v_proj]", "TW_RECIPE_EVAL_STEPS": "null"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    recipe = load_recipe(path)
    assert (recipe.lora_r, recipe.max_steps, recipe.target_modules, recipe.eval_steps) == (
        8,
        20,
        ["q_proj", "v_proj"],
        None,
    )


@pytest.mark.parametrize(
    ("content", "env", "reason"),
    [
        ("lora_r: 0\n", {}, "lora_r"),
        ("lora_rank: 8\n", {}, "lora_rank"),
        ("- a list\n", {}, "YAML mapping"),
        ("", {"TW_RECIPE_LORA_RANK": "8"}, "unknown recipe override TW_RECIPE_LORA_RANK"),
    ],
)
def test_bad_recipe_names_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, env: dict[str, str], reason: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(content)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RecipeError, match=reason):
        load_recipe(path)


def test_missing_recipe_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "nope.yaml")


def test_device_defaults() -> None:
    gpu = Recipe().for_device(cuda_available=True)
    assert (gpu.device, gpu.bf16, gpu.load_in_4bit, gpu.optim, gpu.gradient_checkpointing) == (
        "cuda",
        True,
        True,
        "paged_adamw_8bit",
        True,
    )
    cpu = Recipe().for_device(cuda_available=False)
    assert (cpu.device, cpu.bf16, cpu.load_in_4bit, cpu.optim, cpu.gradient_checkpointing) == (
        "cpu",
        False,
        False,
        "adamw_torch",
        False,
    )
    assert Recipe(device="cpu", optim="sgd").for_device(cuda_available=True).optim == "sgd"


def test_keyword_arguments_win_over_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_RECIPE_LORA_R", "8")
    assert (Recipe().lora_r, Recipe(lora_r=4).lora_r) == (8, 4)


def test_options_the_recipe_no_longer_has_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_RECIPE_LORA_LAYERS", "15")
    with pytest.raises(RecipeError, match="unknown recipe override TW_RECIPE_LORA_LAYERS"):
        load_recipe()
