"""Automatic prefix caching for the CPU engine, in the spirit of vLLM's.

An agent sends the same long prefix at every step (system prompt with every tool schema,
then the growing history). We keep the KV cache of recent prompts and, for a new prompt,
reuse the longest common token prefix with any of them, so only the new tail is prefilled.
Entries are keyed by adapter too: an adapter changes the keys and values.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from tracewheel.core.sequences import common_prefix_length
from tracewheel.inference.engine.kv import KV


@dataclass
class _Entry:
    adapter: str | None
    token_ids: tuple[int, ...]
    kv: KV


class PrefixCache:
    """An LRU of prompt KV caches, bounded by the total number of cached tokens."""

    def __init__(self, max_tokens: int = 32768, max_entries: int = 32) -> None:
        self.max_tokens = max_tokens
        self.max_entries = max_entries
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self.hits = 0
        self.lookups = 0

    @property
    def cached_tokens(self) -> int:
        return sum(len(e.token_ids) for e in self._entries.values())

    def lookup(self, adapter: str | None, token_ids: list[int]) -> tuple[int, KV | None]:
        """The longest reusable prefix: (number of tokens, their KV) — at most len-1 tokens,
        since the last prompt token must be run to get the next token's logits."""
        self.lookups += 1
        best_key, best_len = None, 0
        for key, entry in self._entries.items():
            if entry.adapter != adapter:
                continue
            length = min(common_prefix_length(entry.token_ids, token_ids), len(token_ids) - 1)
            if length > best_len:
                best_key, best_len = key, length
        if best_key is None:
            return 0, None
        self.hits += 1
        self._entries.move_to_end(best_key)
        kv = [(k[:, :, :best_len, :], v[:, :, :best_len, :]) for k, v in self._entries[best_key].kv]
        return best_len, kv

    def insert(self, adapter: str | None, token_ids: list[int], kv: KV) -> None:
        """Stores a prompt's KV (tensors are never modified in place later, so no copy)."""
        if not token_ids:
            return
        key_ids = tuple(token_ids)
        # an entry that is a prefix of the new one is redundant
        for key in [
            k for k, e in self._entries.items() if e.adapter == adapter and key_ids[: len(e.token_ids)] == e.token_ids
        ]:
            del self._entries[key]
        self._entries[self._next_key] = _Entry(adapter, key_ids, kv)
        self._next_key += 1
        while self._entries and (len(self._entries) > self.max_entries or self.cached_tokens > self.max_tokens):
            self._entries.popitem(last=False)

    def drop_adapter(self, adapter: str) -> None:
        for key in [k for k, e in self._entries.items() if e.adapter == adapter]:
            del self._entries[key]
