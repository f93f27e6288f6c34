"""Which rows an adapter has been trained on, so a warm start can train on only the new ones.

Every adapter this trainer saves carries `trained_rows.json`: the keys (content hashes) of the
rows it was fitted on, its init adapter's included, so the record is cumulative over rounds. A
row's key is the SHA-256 of its columns (token ids and labels for pre-tokenized rows; messages
and tools for conversational ones): the same trace rendered into the next build has the same key,
and an edited trace a new one.

With `Recipe.warm_start_rows = "new"` a warm start trains on the rows its init adapter has not
seen plus `warm_start_replay` of the ones it has (a seeded sample, so the old rows are rehearsed
and not forgotten), instead of the whole dataset again: round N's training then costs what
round N's new data costs, not what every round's data costs. An init adapter without the record
(one saved before it existed, or loaded from elsewhere) trains on every row.

The record also keeps a warm start honest (warm_start.py): when the new dataset lacks rows the
deployed adapter was trained on (a person rejected their traces since), carrying that adapter on
would keep what they taught, so the job starts from the base model instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset

from tracewheel.trainer.data import DatasetError, load_training_data

log = logging.getLogger(__name__)

TRAINED_ROWS = "trained_rows.json"


def row_key(row: dict[str, Any]) -> str:
    """The content hash of one row (every column, in a canonical JSON form)."""
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_keys(split: Dataset) -> list[str]:
    """The key of every row of `split`, in order."""
    return [row_key(row) for row in split]


def read_trained_rows(adapter_dir: Path) -> set[str] | None:
    """The keys an adapter was trained on; None when it has no readable record."""
    path = adapter_dir / TRAINED_ROWS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("%s is unreadable (%s): the adapter's rows are unknown", path, exc)
        return None
    keys = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        log.warning("%s has no list of row keys: the adapter's rows are unknown", path)
        return None
    return set(keys)


def write_trained_rows(adapter_dir: Path, keys: Iterable[str]) -> None:
    """Writes the record into `adapter_dir` (a staging folder: the adapter is renamed into place whole)."""
    record = {"rows": sorted(set(keys))}
    (adapter_dir / TRAINED_ROWS).write_text(json.dumps(record, indent=0) + "\n", encoding="utf-8")


def rows_missing(trained: set[str], dataset_dir: Path) -> int:
    """How many of the `trained` rows the dataset at `dataset_dir` no longer has (a curator removed
    or edited their traces, or the rows render differently now).

    Raises:
        DatasetError: the dataset cannot be read.
    """
    return len(trained - set(row_keys(load_training_data(dataset_dir).train)))


def warm_start_rows(keys: list[str], seen: set[str] | None, replay: int, seed: int, where: str) -> list[int]:
    """The indices of the rows a warm start trains on, given every row's key: those not in `seen`,
    plus `replay` seen ones (a seeded sample), in the dataset's order. Every row when `seen` is None
    (the init adapter's rows are unknown).

    Raises:
        DatasetError: every row was seen already: a warm start has nothing new to learn.
    """
    if seen is None:
        log.warning("%s: the init adapter has no %s, so the warm start trains on every row", where, TRAINED_ROWS)
        return list(range(len(keys)))
    new = [index for index, key in enumerate(keys) if key not in seen]
    if not new:
        raise DatasetError(
            f"{where}: all {len(keys)} rows were already trained into the init adapter; a warm start on new "
            "rows only (warm_start_rows=new) has nothing to learn; build again when new traces are approved, or "
            "set warm_start_rows=all"
        )
    old = [index for index, key in enumerate(keys) if key in seen]
    replayed = random.Random(seed).sample(old, min(replay, len(old)))
    log.info("%s: warm start on %d new rows and %d replayed of %d seen", where, len(new), len(replayed), len(old))
    return sorted(new + replayed)
