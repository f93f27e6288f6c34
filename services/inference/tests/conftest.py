"""Shared fixtures: the tiny test model, and a running inference service on it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewheel.inference.testing import RunningService, running_inference_service, tiny_test_model


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 on the SmolLM2 tokenizer, with the project's serving template."""
    return tiny_test_model()


def make_adapter(base_dir: Path, target: Path, seed: int) -> Path:
    """A real LoRA adapter with random (non-zero) weights for the model in base_dir."""
    if (target / "adapter_config.json").exists():
        return target
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' own deprecation inside save_pretrained
        model.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def inference_service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The inference service on the tiny model (a short default max_tokens keeps tests fast)."""
    home = tmp_path_factory.mktemp("inference-home")
    with running_inference_service(tiny_model_dir, home, {"TW_INFERENCE_DEFAULT_MAX_TOKENS": "16"}) as service:
        yield service
