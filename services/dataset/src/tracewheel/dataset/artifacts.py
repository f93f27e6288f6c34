"""Writing a versioned dataset directory, atomically (a temporary directory renamed at the end).

The layout, the column names and the manifest are `tracewheel.core.dataset_layout`'s. Here: the
Arrow types, and how rows become columns. The JSONL rows of a packed build hold each trace's
last prompt as served, with every turn a target. TRL 1.x SFTTrainer takes a dataset with
`input_ids` as pre-tokenized and uses `labels` as they are, so the target-only mask survives;
its own `assistant_only_loss` would train every assistant turn of the row.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
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
from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.files import staging_dir
from tracewheel.dataset.render import RenderedRow
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
    """A row, its tokens, and its messages and tools as the JSON the files hold (`render.ChatDicts`)."""

    row: TrainingRow
    rendered: RenderedRow
    messages_json: str
    tools_json: str


def _list_array(values: list[list[int]], dtype: type[np.number[Any]]) -> pa.Array:
    """Lists of ints as one Arrow list column, through one flat numpy array: a third of the time
    pyarrow takes to convert nested Python lists value by value."""
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise FailedPrecondition(f"{offsets[-1]} values in one column of a split: over the 2**31 a list column holds")
    flat = np.fromiter(chain.from_iterable(values), dtype=dtype, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(flat))


def _labels(ids: pa.Array, masks: pa.Array) -> pa.Array:
    """The token where the mask is 1, IGNORE_INDEX elsewhere, with the ids' row boundaries."""
    flat_ids, flat_masks = ids.values.to_numpy(), masks.values.to_numpy()
    flat = np.where(flat_masks == 1, flat_ids, np.int64(IGNORE_INDEX))  # int64, as LABELS are
    return pa.ListArray.from_arrays(ids.offsets, pa.array(flat))


def _table(rows: list[EncodedRow], features: Features, fingerprint: str) -> Dataset:
    """The rows as a Dataset over an Arrow table with the features' schema, built column by column
    (`fingerprint` given: datasets would otherwise hash the whole table to make one)."""
    rendered = [encoded.rendered for encoded in rows]
    ids = _list_array([r.input_ids for r in rendered], np.int32)
    masks = _list_array([r.assistant_masks for r in rendered], np.int8)
    columns: dict[str, pa.Array] = {
        TRACE_ID: pa.array([encoded.row.trace_id for encoded in rows], type=pa.string()),
        MESSAGES: pa.array([encoded.messages_json for encoded in rows], type=pa.string()),
        TOOLS: pa.array([encoded.tools_json for encoded in rows], type=pa.string()),
        TARGETS: _list_array([encoded.row.targets for encoded in rows], np.int32),
        INPUT_IDS: ids,
        ASSISTANT_MASKS: masks,
        LABELS: _labels(ids, masks),
    }
    if PARENTS in features:  # a packed build: a row that is no tree is its own chain
        lengths = [len(r.input_ids) for r in rendered]
        positions = [r.position_ids or list(range(n)) for r, n in zip(rendered, lengths, strict=True)]
        parents = [r.parents or list(range(-1, n - 1)) for r, n in zip(rendered, lengths, strict=True)]
        columns[POSITION_IDS] = _list_array(positions, np.int32)
        columns[PARENTS] = _list_array(parents, np.int32)
    schema = features.arrow_schema
    return Dataset(
        pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema), fingerprint=fingerprint
    )


def _write_jsonl(path: Path, rows: list[EncodedRow]) -> None:
    """Each row as `json.dumps({MESSAGES: <its messages>, TOOLS: <its tools' JSON string>})`, from
    the JSON the row already holds."""
    messages_key, tools_key = json.dumps(MESSAGES), json.dumps(TOOLS)
    with path.open("w", encoding="utf-8") as out:
        for encoded in rows:
            tools = json.dumps(encoded.tools_json, ensure_ascii=False)
            out.write(f"{{{messages_key}: {encoded.messages_json}, {tools_key}: {tools}}}\n")


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
        tables = {name: _table(splits[name], features, f"{manifest.selection_sha256[:16]}-{name}") for name in SPLITS}
        with ThreadPoolExecutor(2, thread_name_prefix="write") as writers:  # Arrow writes without the GIL
            # One shard per split even when empty: datasets cannot load back a split saved as 0 shards.
            shards = dict.fromkeys(SPLITS, 1)
            written = [writers.submit(DatasetDict(tables).save_to_disk, str(staging / HF_DIR), num_shards=shards)]
            written += [writers.submit(t.to_parquet, str(staging / parquet_file(n))) for n, t in tables.items()]
            for name in SPLITS:
                _write_jsonl(staging / jsonl_file(name), splits[name])
            for future in written:
                future.result()
        write_manifest(staging, manifest)
    return target
