"""The engine's grouped-query attention gives transformers' `sdpa` results, masks and cache included.

The engine switches the model it is given (engine/attention.py), so the engine tests that compare
against `model.generate` run both sides on this function; this test holds it to `sdpa` itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tracewheel.inference.engine.attention import NAME, use_gqa_attention


def test_grouped_query_attention_equals_sdpa_under_padding_holes_and_a_cache(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, DynamicCache

    sdpa = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    grouped = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    use_gqa_attention(grouped)
    assert grouped.config._attn_implementation == NAME
    assert sdpa.config._attn_implementation == "sdpa"
    assert grouped.config.num_key_value_heads < grouped.config.num_attention_heads  # grouped heads to fold

    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, grouped.config.vocab_size, (2, 7), generator=generator)
    prompt_mask = torch.ones(2, 7, dtype=torch.long)
    prompt_mask[1, :3] = 0  # the second row is left-padded
    step = torch.randint(0, grouped.config.vocab_size, (2, 3), generator=generator)
    step_mask = torch.cat([prompt_mask, torch.tensor([[1, 1, 1], [1, 0, 1]])], dim=1)  # a masked-out draft
    prompt_positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    step_positions = prompt_positions[:, -1:] + 1 + torch.arange(3)

    outputs = []
    for model in (sdpa, grouped):
        with torch.inference_mode():
            cache = DynamicCache()
            first = model(
                input_ids=prompt, attention_mask=prompt_mask, position_ids=prompt_positions, past_key_values=cache
            )
            second = model(input_ids=step, attention_mask=step_mask, position_ids=step_positions, past_key_values=cache)
        outputs.append((first.logits[prompt_mask.bool()], second.logits))
    torch.testing.assert_close(outputs[1][0], outputs[0][0])
    torch.testing.assert_close(outputs[1][1], outputs[0][1])
