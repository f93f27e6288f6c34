"""Deterministic train/eval split by trace id, and deduplication of identical rows.

A trace's split depends only on its id (and a seed), never on which other traces are in the
build: all rows of a trace land on one side, and a trace stays on its side as the store grows.
With few traces the eval side may be empty; that is the price of that stability.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tracewheel.core.errors import InvalidArgument
from tracewheel.dataset.unroll import TrainingRow

logger = logging.getLogger(__name__)

Split = Literal["train", "eval"]


class DatasetSplit(BaseModel):
    model_config = ConfigDict(frozen=True)

    train: list[TrainingRow]
    eval: list[TrainingRow]
    duplicates_removed: int = 0


def split_position(trace_id: str, seed: str = "") -> float:
    """Where a trace id falls in [0, 1), uniformly, from sha256(seed + id)."""
    digest = hashlib.sha256(f"{seed}\x00{trace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _checked_ratio(eval_ratio: float) -> float:
    if not 0.0 <= eval_ratio <= 1.0:
        raise InvalidArgument(f"eval_ratio: must be between 0 and 1, got {eval_ratio}")
    return eval_ratio


def split_of(trace_id: str, eval_ratio: float, seed: str = "") -> Split:
    """The split a trace's rows go to: eval for about `eval_ratio` of all ids.

    Raises:
        InvalidArgument: eval_ratio is outside [0, 1].
    """
    return "eval" if split_position(trace_id, seed) < _checked_ratio(eval_ratio) else "train"


def dedup_rows(rows: Iterable[TrainingRow]) -> tuple[list[TrainingRow], int]:
    """The rows without repeats of an earlier row's content (first kept), and how many were dropped."""
    seen: set[str] = set()
    unique: list[TrainingRow] = []
    dropped = 0
    for row in rows:
        key = row.content_key()
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        unique.append(row)
    return unique, dropped


def split_rows(rows: Iterable[TrainingRow], eval_ratio: float, seed: str = "") -> DatasetSplit:
    """Deduplicates rows, then sends each to its trace's split.

    Deduplicating first means an identical row from two traces is kept once, on the first
    trace's side, so it can never sit in train and eval at once.

    Raises:
        InvalidArgument: eval_ratio is outside [0, 1].
    """
    _checked_ratio(eval_ratio)
    unique, removed = dedup_rows(rows)
    sides: dict[Split, list[TrainingRow]] = {"train": [], "eval": []}
    for row in unique:
        sides[split_of(row.trace_id, eval_ratio, seed)].append(row)
    logger.info(
        "split %d rows: %d train, %d eval, %d duplicates removed",
        len(unique),
        len(sides["train"]),
        len(sides["eval"]),
        removed,
    )
    return DatasetSplit(train=sides["train"], eval=sides["eval"], duplicates_removed=removed)
