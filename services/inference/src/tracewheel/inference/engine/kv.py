"""A KV cache that grows in place, for the running batch's decode steps.

transformers' `DynamicLayer` appends each new token with `torch.cat`, which copies the whole
cache; and a `DynamicCache` built from tensors copies them once more. Rebuilt every decode
step, that is two copies of every layer's keys and values per generated token: at agent
context lengths (2-4k tokens, four rows) the copies cost more than the model's matmuls
(bench/decode_cache.py). `GrowingLayer` keeps its tensors in a buffer with spare
room and writes new tokens into it; `keys`/`values` are views of the filled part. It grows
by `headroom` tokens at a time, so a copy happens once per `headroom` generated tokens.

Like vLLM's preallocated KV blocks, in miniature, and only for the batch: the prefix cache
keeps its own tensors, which nothing writes to (prefix_cache.py).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [batch, heads, tokens, dim]

DEFAULT_HEADROOM = 256
"""Spare token slots allocated beyond the filled part (each growth adds this many again)."""


class GrowingLayer(DynamicLayer):  # type: ignore[misc]  # transformers is read as Any (mypy skips it)
    """One layer's keys and values in a buffer with spare room; `update` appends in place."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, headroom: int = DEFAULT_HEADROOM) -> None:
        super().__init__()
        if headroom < 1:
            raise ValueError(f"headroom must be at least 1 token, got {headroom}")
        self.headroom = headroom
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.length = 0
        self._keys = self._values = keys[:, :, :0]
        self._reserve(keys, values, keys.shape[2] + headroom)
        self._write(keys, values)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        needed = self.length + key_states.shape[2]
        if needed > self._keys.shape[2]:
            self._reserve(key_states, value_states, needed + self.headroom)
        self._write(key_states, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a GrowingLayer is only appended to")

    def _reserve(self, like_keys: torch.Tensor, like_values: torch.Tensor, capacity: int) -> None:
        """A buffer of `capacity` tokens holding what is filled so far."""
        batch, heads, _, dim = like_keys.shape
        keys = like_keys.new_empty(batch, heads, capacity, dim)
        values = like_values.new_empty(batch, heads, capacity, like_values.shape[3])
        keys[:, :, : self.length] = self._keys[:, :, : self.length]
        values[:, :, : self.length] = self._values[:, :, : self.length]
        self._keys, self._values = keys, values

    def _write(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        start, self.length = self.length, self.length + keys.shape[2]
        self._keys[:, :, start : self.length] = keys
        self._values[:, :, start : self.length] = values
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]


def growing_cache(kv: KV, headroom: int = DEFAULT_HEADROOM) -> Cache:
    """A cache holding copies of `kv` (per layer) that decode steps append to in place."""
    return Cache(layers=[GrowingLayer(k, v, headroom) for k, v in kv])


def cache_kv(cache: Cache) -> KV:
    """The filled part of each layer (views; copy before keeping them past the next update)."""
    return [(layer.keys, layer.values) for layer in cache.layers]
