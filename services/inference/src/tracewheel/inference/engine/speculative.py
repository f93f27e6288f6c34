"""Draft tokens for speculative decoding, looked up in the request's own tokens.

Prompt lookup (vLLM's `ngram` method): take the last n tokens generated so far (prompt and
output together), find the latest earlier place where the same n tokens occur, and propose the
tokens that followed them there. The model then checks all the drafts in one forward pass and
keeps the ones it would have written itself (engine/core.py), so greedy output does not change.

An agent's turns copy a lot from their context: the tool-call JSON repeats the shape of earlier
calls, and element names, refs and prices come from the page snapshot just read. A decode step
on a CPU costs about the same for one token a row as for a few (bench/decode_batch.py: the
step time is overhead more than arithmetic), so every accepted draft is a token almost for free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROMPT_LOOKUP_MAX = 4
"""The longest context tail (n-gram) looked up for drafts, by the CPU engine and in vLLM's ngram config."""
PROMPT_LOOKUP_MIN = 2
"""The shortest context tail tried."""


def propose(context: Sequence[int] | np.ndarray, tokens: int, max_ngram: int, min_ngram: int) -> list[int]:
    """Up to `tokens` draft tokens: what followed the latest earlier match of the context's tail.

    Args:
        context: the request's tokens so far (prompt, then output).
        tokens: the most drafts to return.
        max_ngram, min_ngram: tail lengths tried, longest first; the first that matches wins.

    Returns:
        The drafts (possibly fewer than `tokens`, or none when no tail length matches).
    """
    if tokens < 1:
        return []
    ids = np.asarray(context, dtype=np.int64)
    length = len(ids)
    for n in range(min(max_ngram, length - 1), min_ngram - 1, -1):
        tail = ids[length - n :]
        # windows start at 0 .. length-1-n: each has at least one token after it to propose
        windows = np.lib.stride_tricks.sliding_window_view(ids[: length - 1], n)
        hits = np.flatnonzero((windows == tail).all(axis=1))
        if hits.size:
            start = int(hits[-1]) + n
            drafts: list[int] = ids[start : start + tokens].tolist()
            return drafts
    return []
