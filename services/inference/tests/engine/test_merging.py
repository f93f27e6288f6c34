"""Single-adapter forwards on merged weights (engine/merging.py), against PEFT's own paths."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from tracewheel.inference.engine.merging import MergedWeights

from ..conftest import make_adapter

PROMPT = torch.tensor([[5, 17, 300, 42, 9, 1000, 77, 3]])


@pytest.fixture
def peft_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny model with two random LoRA adapters, a1 and a2."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.getbasetemp() / "merging-adapters"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    model = PeftModel.from_pretrained(model, str(make_adapter(tiny_model_dir, folder / "a1", 1)), adapter_name="a1")
    model.load_adapter(str(make_adapter(tiny_model_dir, folder / "a2", 2)), adapter_name="a2", is_trainable=False)
    return model.eval()


def logits(model: Any, weights: MergedWeights | None, adapters: list[str | None]) -> torch.Tensor:
    """Last-position logits of PROMPT, one row per entry of `adapters`; PEFT's mixed-batch path
    when `weights` is None."""
    kwargs = (
        weights.forward_kwargs(model, adapters)
        if weights is not None
        else {"adapter_names": [a or "__base__" for a in adapters]}
    )
    with torch.inference_mode():
        return model(input_ids=PROMPT.repeat(len(adapters), 1), **kwargs).logits[:, -1]


def base_weights(model: Any) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" not in name}


def test_a_merged_forward_computes_what_peft_computes(peft_model: Any) -> None:
    expected = {adapter: logits(peft_model, None, [adapter]) for adapter in ("a1", "a2", None)}  # before any merge
    weights = MergedWeights()
    for adapter in ("a1", "a2", None):
        assert torch.allclose(logits(peft_model, weights, [adapter]), expected[adapter], atol=1e-4, rtol=1e-4)
    assert weights.merges == 2  # the base model needs no merged set
    assert not torch.allclose(logits(peft_model, weights, ["a1"]), logits(peft_model, weights, ["a2"]))


def test_rows_of_different_adapters_take_the_mixed_batch_path_on_the_base_weights(peft_model: Any) -> None:
    expected = logits(peft_model, None, ["a1", None, "a2"])
    weights = MergedWeights()
    logits(peft_model, weights, ["a1"])  # the layers now hold a1's merged weights
    kwargs = weights.forward_kwargs(peft_model, ["a1", None, "a2"])
    assert kwargs == {"adapter_names": ["a1", "__base__", "a2"]}
    assert torch.allclose(logits(peft_model, weights, ["a1", None, "a2"]), expected, atol=1e-4, rtol=1e-4)


def test_switching_back_and_forth_leaves_the_base_weights_bit_for_bit(peft_model: Any) -> None:
    before = base_weights(peft_model)
    expected = logits(peft_model, None, ["a1"])
    weights = MergedWeights(keep=1)  # evicts at every switch between a1 and a2
    for adapters in (["a1"], ["a2"], [None], ["a1", "a2"], ["a1"], ["a2"], ["a1"]):
        logits(peft_model, weights, adapters)
    assert weights.merges == 5
    weights.reset(peft_model)
    after = base_weights(peft_model)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert torch.allclose(logits(peft_model, None, ["a1"]), expected)  # PEFT's path as before, exactly


def test_unloading_the_last_adapter_after_merged_forwards_gives_back_the_base_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The registry path: PeftAdapters resets the merged weights before PEFT unloads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
    from tracewheel.inference.engine import Engine, SamplingParams

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    before = base_weights(model)
    engine = Engine(model, AutoTokenizer.from_pretrained(tiny_model_dir)).start()
    try:
        registry = ModelRegistry(PeftAdapters(engine), "tiny")
        registry.load("a1", str(make_adapter(tiny_model_dir, tmp_path / "a1", 1)))
        engine.generate_blocking(PROMPT[0].tolist(), SamplingParams(max_tokens=4, temperature=0.0), "a1")
        assert engine.weights is not None and engine.weights.merges == 1
        registry.unload("a1")
    finally:
        engine.stop()
    after = base_weights(engine.model)
    assert not hasattr(engine.model, "peft_config")
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_an_adapter_peft_merges_differently_keeps_the_mixed_batch_path(tiny_model_dir: Path) -> None:
    """A LoRA with biases on B: merging would have to add them to the base layers' biases."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns that the tiny model's layers have no bias to merge into
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            LoraConfig(r=4, target_modules="all-linear", lora_bias=True, init_lora_weights=False),
            adapter_name="b",
        ).eval()
    with torch.inference_mode():
        expected = model(input_ids=PROMPT).logits[:, -1]  # PEFT's own path for its active adapter
    weights = MergedWeights()
    assert weights.forward_kwargs(model, ["b"]) == {"adapter_names": ["b"]}
    assert weights.merges == 0
    assert torch.allclose(logits(model, weights, ["b"]), expected, atol=1e-4, rtol=1e-4)


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep must be 1 or more"):
        MergedWeights(keep=0)
