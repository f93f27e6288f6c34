"""Training on prefix-tree rows: the attention mask of a packed row, and the collator that builds it.

The dataset service packs a windowed trace's per-turn rows into one row whose tokens form a
tree (tracewheel.dataset.pack): `parents[i]` is the index of the token before token i in its
own row (-1 for the first), `position_ids[i]` its place in that row. Token i may attend to
itself and its ancestors, nothing else; so each turn's tokens see exactly the prompt it was
served, and the shared tokens are computed once. The model takes the mask as a custom 4D
attention mask (transformers passes a 4D mask through unchanged) with the position ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

TREE_MASK_KEY = "tree_attention_mask"
"""Where the collator puts the 4D mask; the loss hands it to the model as `attention_mask`.
(Under that name the Trainer would count the mask's L*L entries as input tokens.)"""


def tree_attention_mask(parents: Sequence[int]) -> torch.Tensor:
    """The (L, L) boolean mask of a prefix-tree row: True where the row's token attends.

    Raises:
        ValueError: a parent does not come before its token.
    """
    length = len(parents)
    mask = torch.zeros(length, length, dtype=torch.bool)
    start = 0
    while start < length:
        end = start + 1
        while end < length and parents[end] == end - 1:
            end += 1
        parent = parents[start]
        if not -1 <= parent < start:
            raise ValueError(f"parents[{start}] = {parent}: a token's parent must come before it (or be -1)")
        if parent >= 0:
            mask[start:end] = mask[parent]
        mask[start:end, start:end] = torch.ones(end - start, end - start, dtype=torch.bool).tril()
        start = end
    return mask


class PrefixTreeCollator:
    """Pads prefix-tree rows into a batch: `input_ids`, `labels`, `position_ids` and the 4D mask
    (batch, 1, L, L) under `TREE_MASK_KEY`. A padding position attends only to itself (a row of
    the mask with no True would make attention NaN there, and NaN reaches the gradients)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        length = max(len(example["input_ids"]) for example in examples)
        batch = len(examples)
        input_ids = torch.full((batch, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, length), -100, dtype=torch.long)
        positions = torch.zeros((batch, length), dtype=torch.long)
        mask = torch.eye(length, dtype=torch.bool).repeat(batch, 1, 1, 1)
        for row, example in enumerate(examples):
            size = len(example["input_ids"])
            input_ids[row, :size] = torch.as_tensor(example["input_ids"])
            labels[row, :size] = torch.as_tensor(example["labels"])
            positions[row, :size] = torch.as_tensor(example["position_ids"])
            mask[row, 0, :size, :size] = tree_attention_mask(example["parents"])
        return {"input_ids": input_ids, "labels": labels, "position_ids": positions, TREE_MASK_KEY: mask}
