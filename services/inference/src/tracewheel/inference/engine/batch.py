"""The engine's running rows and their batched KV cache (engine/core.py runs the steps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache

from tracewheel.inference.engine.kv import KV, cache_kv, growing_cache

if TYPE_CHECKING:
    from tracewheel.inference.engine.core import GenerationHandle


class Batch:
    """The running rows: a left-padded batched KV cache (grown in place by decode steps) and its
    attention mask. Admitting or dropping a row re-lays the cache once (a copy); a decode step
    only appends (engine/kv.py)."""

    def __init__(self) -> None:
        self.rows: list[GenerationHandle] = []
        self.cache: Cache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    def add(self, handle: GenerationHandle, kv: KV) -> None:
        length = kv[0][0].shape[2]
        if self.cache is None:
            self.rows, self.cache, self.mask = [handle], growing_cache(kv), torch.ones(1, length, dtype=torch.long)
            return
        width = max(self.mask.shape[1], length)
        pad_old, pad_new = width - self.mask.shape[1], width - length
        self.cache = growing_cache(
            [
                (
                    torch.cat([F.pad(k, (0, 0, pad_old, 0)), F.pad(nk, (0, 0, pad_new, 0))]),
                    torch.cat([F.pad(v, (0, 0, pad_old, 0)), F.pad(nv, (0, 0, pad_new, 0))]),
                )
                for (k, v), (nk, nv) in zip(cache_kv(self.cache), kv, strict=True)
            ]
        )
        new_mask = F.pad(torch.ones(1, length, dtype=torch.long), (pad_new, 0))
        self.mask = torch.cat([F.pad(self.mask, (pad_old, 0)), new_mask])
        self.rows.append(handle)

    def keep(self, keep: list[int]) -> None:
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not keep or self.cache is None:
            self.cache, self.mask = None, torch.zeros(0, 0, dtype=torch.long)
            return
        index = torch.tensor(keep)
        self.mask = self.mask[index]
        first = int(self.mask.any(dim=0).nonzero()[0].item())  # drop columns that are padding for all rows
        self.mask = self.mask[:, first:]
        self.cache = growing_cache([(k[index][:, :, first:], v[index][:, :, first:]) for k, v in cache_kv(self.cache)])
