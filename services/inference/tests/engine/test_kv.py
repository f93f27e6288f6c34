"""GrowingLayer: appending in place gives the model exactly what transformers' own cache does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import DynamicCache

from tracewheel.inference.engine.kv import GrowingLayer, cache_kv, growing_cache


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def test_layer_appends_in_place_and_grows_past_its_headroom() -> None:
    keys, values = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    layer = GrowingLayer(keys, values, headroom=2)
    buffer = layer.keys.untyped_storage().data_ptr()
    step = torch.randn(2, 3, 1, 4)
    for _ in range(2):  # fits the headroom: the same buffer
        layer.update(step, -step)
    assert layer.keys.untyped_storage().data_ptr() == buffer
    layer.update(step, -step)  # past the headroom: a bigger buffer, the contents carried over
    assert layer.keys.untyped_storage().data_ptr() != buffer
    assert layer.get_seq_length() == 8
    torch.testing.assert_close(layer.keys, torch.cat([keys, step, step, step], dim=2))
    torch.testing.assert_close(layer.values, torch.cat([values, -step, -step, -step], dim=2))


def test_layer_copies_what_it_is_given() -> None:
    keys = torch.zeros(1, 1, 2, 2)
    layer = GrowingLayer(keys, keys.clone())
    keys.fill_(1.0)
    assert layer.keys.sum() == 0


def test_headroom_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="headroom must be at least 1"):
        GrowingLayer(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), headroom=0)


def test_decoding_with_a_growing_cache_equals_rebuilding_a_dynamic_cache(model: Any) -> None:
    """Twelve batched decode steps from a left-padded prefix: the engine's old way (a fresh
    DynamicCache each step) and the growing cache give the same logits, past a regrowth."""
    torch.manual_seed(0)
    batch, prompt = 3, 9
    input_ids = torch.randint(10, 1000, (batch, prompt))
    mask = torch.ones(batch, prompt, dtype=torch.long)
    mask[1, :4] = 0  # a left-padded row, as in the engine's batch
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=mask, use_cache=True)
        prefix = cache_kv(out.past_key_values)
        tokens = out.logits[:, -1].argmax(-1, keepdim=True)
        rebuilt_kv, growing = prefix, growing_cache(prefix, headroom=5)
        for step in range(12):
            mask = torch.cat([mask, torch.ones(batch, 1, dtype=torch.long)], dim=1)
            positions = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)
            kwargs = {"input_ids": tokens, "attention_mask": mask, "position_ids": positions, "use_cache": True}
            old = model(past_key_values=DynamicCache(ddp_cache_data=rebuilt_kv), **kwargs)
            new = model(past_key_values=growing, **kwargs)
            torch.testing.assert_close(new.logits, old.logits, rtol=0, atol=0, msg=f"step {step}")
            rebuilt_kv = cache_kv(old.past_key_values)
            tokens = old.logits[:, -1].argmax(-1, keepdim=True)
    assert growing.layers[0].get_seq_length() == prompt + 12
