"""A dataset row as the trainer sees it: its token ids cut into trained and context runs, decoded.

A run is a stretch of consecutive tokens with the same label state (trained: the label is not
IGNORE_INDEX). A packed row (a prefix tree, `dataset/pack.py`) also starts a run wherever a new
branch hangs off an earlier token (its parent is not the token just before it), so the page can
say where each branch continues from. Each run is decoded on its own with the build's tokenizer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracewheel.core.base_model import tokenizer_sha256
from tracewheel.core.errors import FailedPrecondition


@dataclass(frozen=True)
class TokenRun:
    """`[start, end)` of a row's tokens, all trained or all context, and their text.

    Attributes:
        branch_from: in a packed row, the index of the token this run's first token follows
            when that is not the token just before it (-1: a branch from the root); else None.
    """

    start: int
    end: int
    trained: bool
    text: str = ""
    branch_from: int | None = None

    @property
    def tokens(self) -> int:
        return self.end - self.start


def token_runs(trained: Sequence[bool], parents: Sequence[int] | None = None) -> list[TokenRun]:
    """The runs of a row: a new one where the trained state changes or a packed branch starts.

    Raises:
        ValueError: `parents` is given with another length than `trained`.
    """
    if parents is not None and len(parents) != len(trained):
        raise ValueError(f"{len(parents)} parents for {len(trained)} tokens")
    runs: list[TokenRun] = []
    start = 0
    for index in range(1, len(trained) + 1):
        branch = index < len(trained) and parents is not None and parents[index] != index - 1
        if index == len(trained) or branch or trained[index] != trained[start]:
            branch_from = parents[start] if parents is not None and parents[start] != start - 1 else None
            runs.append(TokenRun(start, index, bool(trained[start]), branch_from=branch_from))
            start = index
    return runs


def decode_runs(tokenizer: Any | None, input_ids: Sequence[int], runs: list[TokenRun]) -> list[TokenRun]:
    """The runs with their text: decoded with `tokenizer` (special tokens kept, as the model reads
    them), or the token ids written out when there is no tokenizer."""
    decoded = []
    for run in runs:
        ids = list(input_ids[run.start : run.end])
        if tokenizer is None:
            text = " ".join(str(token) for token in ids) + " "
        else:
            text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        decoded.append(TokenRun(run.start, run.end, run.trained, text, run.branch_from))
    return decoded


@dataclass(frozen=True)
class LoadedTokenizer:
    tokenizer: Any
    sha256: str
    """`tokenizer_sha256` of it, compared with the manifest's."""


class TokenizerCache:
    """Tokenizers of base model folders, each loaded once (a build's manifest names its folder)."""

    def __init__(self, limit: int = 4) -> None:
        self._limit = limit
        self._loaded: dict[str, LoadedTokenizer] = {}
        self._lock = threading.Lock()

    def get(self, base_model: str) -> LoadedTokenizer:
        """The tokenizer in the folder `base_model`.

        Raises:
            FailedPrecondition: no base model is recorded, its folder is not on this host, or it
                holds no tokenizer that loads (the message says which).
        """
        if not base_model:
            raise FailedPrecondition("the manifest records no base model, so there is no tokenizer to decode with")
        with self._lock:
            if base_model in self._loaded:
                return self._loaded[base_model]
            if not Path(base_model).is_dir():
                raise FailedPrecondition(f"the base model folder {base_model} is not on this host")
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(base_model)
            except (OSError, ValueError) as exc:
                raise FailedPrecondition(f"the tokenizer in {base_model} does not load: {exc}") from None
            loaded = LoadedTokenizer(tokenizer, tokenizer_sha256(tokenizer))
            if len(self._loaded) >= self._limit:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[base_model] = loaded
            return loaded
