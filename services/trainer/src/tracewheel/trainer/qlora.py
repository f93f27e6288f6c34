"""The adapter and quantization objects a training run passes to PEFT and transformers, and the
device check that refuses what the machine cannot do.

QLoRA (Dettmers et al., 2023) on CUDA: the base model loaded in 4-bit NF4 with double
quantization (bitsandbytes), computing in bf16, LoRA adapters trained in bf16 on top (TRL casts
them), paged 8-bit AdamW (`Recipe.for_device`'s CUDA default: optimizer state pages to host
memory instead of failing on a spike). bitsandbytes is the trainer's `gpu` extra; the CPU
environment does not have it, and 4-bit loading needs CUDA, so a recipe asking for either on a
machine without them is refused before any model is loaded.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tracewheel.trainer.recipe import ENV_PREFIX, Recipe, RecipeError


def quantization_config(recipe: Recipe) -> Any | None:
    """transformers' BitsAndBytesConfig for a 4-bit recipe (NF4, double quantization, bf16
    compute); None when the recipe does not load the base model in 4-bit.

    Builds without bitsandbytes or a GPU; loading a model with it needs both (`require_device`).
    """
    if not recipe.load_in_4bit:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def lora_config(recipe: Recipe) -> Any:
    """PEFT's LoraConfig for a new adapter: the recipe's rank, alpha, dropout and target modules."""
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        task_type="CAUSAL_LM",
        target_modules=recipe.target_modules,
    )


def _needs_bitsandbytes(recipe: Recipe) -> str:
    """What in the recipe needs bitsandbytes ("" when nothing does)."""
    if recipe.load_in_4bit:
        return "load_in_4bit (QLoRA)"
    if recipe.optim and "8bit" in recipe.optim:
        return f"optim {recipe.optim}"
    return ""


def require_device(recipe: Recipe, cuda_available: bool) -> None:
    """Refuses a device-resolved recipe (`Recipe.for_device`) this machine cannot train.

    Raises:
        RecipeError: the recipe asks for CUDA, 4-bit loading or an 8-bit optimizer on a machine
            without CUDA, or for 4-bit / 8-bit on one without bitsandbytes; the message names the
            option and what to set instead.
    """
    if recipe.device == "cuda" and not cuda_available:
        raise RecipeError(
            f"the recipe asks for device cuda but torch sees no CUDA device here; set device: auto or cpu "
            f"({ENV_PREFIX}DEVICE=cpu), or train on a CUDA machine"
        )
    needs = _needs_bitsandbytes(recipe)
    if needs and recipe.device != "cuda":
        option = "LOAD_IN_4BIT=false" if recipe.load_in_4bit else "OPTIM=adamw_torch"
        raise RecipeError(
            f"{needs} needs a CUDA GPU (bitsandbytes) and this run is on the CPU; set {ENV_PREFIX}{option} "
            "(or the same in the recipe file) to train in full precision here, or train on a CUDA machine"
        )
    if needs and importlib.util.find_spec("bitsandbytes") is None:
        raise RecipeError(
            f"{needs} needs bitsandbytes, which is not installed; install the trainer's gpu extra "
            "(pip install 'tracewheel-trainer[gpu]')"
        )
