"""Writing a versioned dataset directory, atomically (a temporary directory renamed at the end).

The layout, the column names and the manifest are `tracewheel.core.dataset_layout`'s. Here: the
Arrow types, and how rows become columns. The JSONL rows of a packed build hold each trace's
last prompt as served, with every turn a target. TRL 1.x SFTTrainer takes a dataset with
`input_ids` as pre-tokenized and uses `labels` as they are, so the target-only mask survives;
its own `assistant_only_loss` would train every assistant turn of the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Sequence, Value

from tracewheel.core.dataset_layout import (
    ASSISTANT_MASKS,
    HF_DIR,
    IGNORE_INDEX,
    INPUT_IDS,
    LABELS,
    MESSAGES,
    PARENTS,
    POSITION_IDS,
    SPLITS,
    TARGETS,
    TOOLS,
    TRACE_ID,
    Manifest,
    jsonl_file,
    parquet_file,
    write_manifest,
)
from tracewheel.core.files import staging_dir
from tracewheel.dataset.render import RenderedRow, chat_messages, masked_runs, row_messages_json, row_tools_json
from tracewheel.dataset.unroll import TrainingRow

FEATURES = Features(
    {
        TRACE_ID: Value("string"),
        MESSAGES: Value("string"),
        TOOLS: Value("string"),
        TARGETS: Sequence(Value("int32")),
        INPUT_IDS: Sequence(Value("int32")),
        ASSISTANT_MASKS: Sequence(Value("int8")),
        LABELS: Sequence(Value("int64")),
    }
)


TREE_FEATURES = {POSITION_IDS: Sequence(Value("int32")), PARENTS: Sequence(Value("int32"))}


@dataclass(frozen=True)
class EncodedRow:
    row: TrainingRow
    rendered: RenderedRow


def _columns(rows: list[EncodedRow], features: Features) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in features}
    for encoded in rows:
        if PARENTS in columns:
            length = len(encoded.rendered.input_ids)
            columns[POSITION_IDS].append(encoded.rendered.position_ids or list(range(length)))
            columns[PARENTS].append(encoded.rendered.parents or list(range(-1, length - 1)))
        ids, mask = encoded.rendered.input_ids, encoded.rendered.assistant_masks
        columns[TRACE_ID].append(encoded.row.trace_id)
        columns[MESSAGES].append(row_messages_json(encoded.row))
        columns[TOOLS].append(row_tools_json(encoded.row))
        columns[TARGETS].append(encoded.row.targets)
        columns[INPUT_IDS].append(ids)
        columns[ASSISTANT_MASKS].append(mask)
        columns[LABELS].append(_labels(ids, mask))
    return columns


def _labels(ids: list[int], mask: list[int]) -> list[int]:
    """The token where the mask is 1, IGNORE_INDEX elsewhere (copied run by run: a row has few)."""
    labels = [IGNORE_INDEX] * len(ids)
    for start, end in masked_runs(mask):
        labels[start:end] = ids[start:end]
    return labels


def _write_jsonl(path: Path, rows: list[EncodedRow]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for encoded in rows:
            record = {MESSAGES: chat_messages(encoded.row), TOOLS: row_tools_json(encoded.row)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_dataset_dir(root: Path, version: str, splits: dict[str, list[EncodedRow]], manifest: Manifest) -> Path:
    """Writes `root/version` completely or not at all; returns its path.

    Raises:
        FileExistsError: the version directory already exists.
    """
    target = root / version
    if target.exists():
        raise FileExistsError(f"dataset directory {target} already exists")
    with staging_dir(target) as staging:
        packed = any(encoded.rendered.parents is not None for rows in splits.values() for encoded in rows)
        features = Features({**FEATURES, **TREE_FEATURES}) if packed else FEATURES
        tables = {name: Dataset.from_dict(_columns(splits[name], features), features=features) for name in SPLITS}
        # One shard per split even when empty: datasets cannot load back a split saved as 0 shards.
        DatasetDict(tables).save_to_disk(str(staging / HF_DIR), num_shards=dict.fromkeys(SPLITS, 1))
        for name, table in tables.items():
            table.to_parquet(str(staging / parquet_file(name)))
            _write_jsonl(staging / jsonl_file(name), splits[name])
        write_manifest(staging, manifest)
    return target
