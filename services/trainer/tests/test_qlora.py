"""The CUDA (QLoRA) recipe's objects built without a GPU, and 4-bit refused on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracewheel.core.chat import TRAINING_TEMPLATE
from tracewheel.trainer.export import export_merged, export_source
from tracewheel.trainer.qlora import lora_config, quantization_config, require_device
from tracewheel.trainer.recipe import Recipe, RecipeError
from tracewheel.trainer.train import build_sft_config, train


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_the_cuda_recipe_is_qlora() -> None:
    import torch

    recipe = Recipe().for_device(cuda_available=True)
    assert (recipe.device, recipe.bf16, recipe.load_in_4bit, recipe.optim, recipe.gradient_checkpointing) == (
        "cuda",
        True,
        True,
        "paged_adamw_8bit",
        True,
    )
    quantization = quantization_config(recipe)
    assert quantization.load_in_4bit and not quantization.load_in_8bit
    assert quantization.bnb_4bit_quant_type == "nf4" and quantization.bnb_4bit_use_double_quant
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    lora = lora_config(recipe)
    assert (lora.r, lora.lora_alpha, lora.task_type, lora.target_modules) == (16, 32, "CAUSAL_LM", "all-linear")


def test_the_cuda_sft_config_is_what_trl_accepts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import transformers.training_args

    # the one capability probe that needs a bf16 GPU; every argument is still checked by TrainingArguments
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    config = build_sft_config(Recipe().for_device(cuda_available=True), tmp_path, has_eval=True)
    assert config.bf16 and not config.use_cpu and config.optim == "paged_adamw_8bit"
    assert config.gradient_checkpointing


def test_a_cpu_recipe_has_no_quantization() -> None:
    assert quantization_config(Recipe().for_device(cuda_available=False)) is None


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (Recipe(load_in_4bit=True), "load_in_4bit \\(QLoRA\\) needs a CUDA GPU .* set TW_RECIPE_LOAD_IN_4BIT=false"),
        (Recipe(optim="paged_adamw_8bit"), "optim paged_adamw_8bit needs a CUDA GPU .* TW_RECIPE_OPTIM=adamw_torch"),
        (Recipe(device="cuda"), "asks for device cuda but torch sees no CUDA device here"),
    ],
)
def test_what_needs_cuda_is_refused_without_it(recipe: Recipe, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        require_device(recipe.for_device(cuda_available=False), cuda_available=False)


def test_cuda_without_bitsandbytes_says_what_to_install() -> None:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    with pytest.raises(
        RecipeError, match=r"install the trainer's gpu extra \(pip install 'tracewheel-trainer\[gpu\]'\)"
    ):
        require_device(Recipe().for_device(cuda_available=True), cuda_available=True)


def test_training_in_4bit_on_this_cpu_is_refused_before_anything_loads(dataset_dir: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RecipeError, match="load_in_4bit \\(QLoRA\\) needs a CUDA GPU"):
        train(dataset_dir, tmp_path / "no-model", tmp_path / "out", Recipe(load_in_4bit=True))
    assert not (tmp_path / "out").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_a_qlora_run_on_cuda_trains_and_exports(tiny_model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    recipe = Recipe(lora_r=4, lora_alpha=8, max_steps=2, save_steps=2, eval=False, chat_template=TRAINING_TEMPLATE)
    result = train(dataset_dir, tiny_model_dir, tmp_path / "job", recipe)
    assert result.global_step == 2
    out = export_merged(export_source("qlora", result.adapter_dir), tmp_path / "merged")
    assert AutoModelForCausalLM.from_pretrained(out).config.dtype is not None
