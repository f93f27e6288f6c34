"""The engine's attention: PyTorch SDPA with grouped-query heads, also under a padding mask.

transformers' `sdpa` attention copies every layer's keys and values to repeat them once per
query head (`repeat_kv`) whenever it passes an attention mask and more than one query token,
because CUDA's fast kernels take grouped heads only without a mask. The engine always passes a
mask (left padding, and the masked-out drafts of speculative decoding), and a speculative
decode step has several query tokens per row: at agent context lengths a profile put a third
of such a step in the copies (bench/decode_batch.py --attention). PyTorch's CPU kernel takes `enable_gqa`
with a mask, so this function passes the grouped heads as they are. The masks are transformers'
own `sdpa` masks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.masking_utils import sdpa_mask

NAME = "tracewheel_sdpa_gqa"


def sdpa_gqa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """[batch, heads, queries, dim] query against [batch, kv heads, keys, dim] keys and values;
    returns [batch, queries, heads, dim] as transformers' attention functions do."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    # without a mask, only a prompt with no cached prefix has as many queries as keys: causal
    causal = bool(causal) and attention_mask is None and query.shape[2] > 1
    out = F.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout if module.training else 0.0,
        scale=scaling,
        is_causal=causal,
        enable_gqa=key.shape[1] != query.shape[1],
    )
    return out.transpose(1, 2).contiguous(), None


def use_gqa_attention(model: Any) -> None:
    """Switches a model that uses `sdpa` to this function (others are left as they are)."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return
    AttentionInterface.register(NAME, sdpa_gqa_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
