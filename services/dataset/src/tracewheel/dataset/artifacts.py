"""Writing a versioned dataset directory, atomically (a temporary directory renamed at the end).

Layout of `<artifacts_dir>/<version>/`:

| path | what |
|---|---|
| `hf/` | `datasets.DatasetDict` (`train`, `eval`) from `save_to_disk`: pre-tokenized for TRL |
| `train.parquet`, `eval.parquet` | the same columns |
| `train.jsonl`, `eval.jsonl` | TRL conversational rows `{messages, tools}` (`tools` and arguments as JSON strings) |
| `manifest.json` | what was built from what (see `build.build_manifest`) |

Columns: `trace_id`; `messages` and `tools` as JSON strings (Arrow structs would merge the keys
of every row's mixed-type dicts); `targets` (indices of the trained assistant messages);
`input_ids`; `assistant_masks` (1 on target turns only) and `labels` (`input_ids`, -100 off the
mask). A build with packed rows (a windowed trace's per-turn rows as one prefix tree, pack.py)
adds `position_ids` and `parents` to every row (a row that is not packed: 0..n-1 and -1..n-2);
their JSONL rows hold each trace's last prompt as served, with every turn a target. TRL 1.x
SFTTrainer takes a dataset with `input_ids` as pre-tokenized and uses `labels` as they are, so
the target-only mask survives; its own `assistant_only_loss` would train every assistant turn
of the row.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Sequence, Value

from tracewheel.dataset.render import RenderedRow, chat_messages, row_messages_json, row_tools_json
from tracewheel.dataset.unroll import TrainingRow

IGNORE_INDEX = -100
SPLITS = ("train", "eval")
FEATURES = Features(
    {
        "trace_id": Value("string"),
        "messages": Value("string"),
        "tools": Value("string"),
        "targets": Sequence(Value("int32")),
        "input_ids": Sequence(Value("int32")),
        "assistant_masks": Sequence(Value("int8")),
        "labels": Sequence(Value("int64")),
    }
)


TREE_FEATURES = {"position_ids": Sequence(Value("int32")), "parents": Sequence(Value("int32"))}


@dataclass(frozen=True)
class EncodedRow:
    row: TrainingRow
    rendered: RenderedRow


def _columns(rows: list[EncodedRow], features: Features) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in features}
    for encoded in rows:
        if "parents" in columns:
            length = len(encoded.rendered.input_ids)
            columns["position_ids"].append(encoded.rendered.position_ids or list(range(length)))
            columns["parents"].append(encoded.rendered.parents or list(range(-1, length - 1)))
        ids, mask = encoded.rendered.input_ids, encoded.rendered.assistant_masks
        columns["trace_id"].append(encoded.row.trace_id)
        columns["messages"].append(row_messages_json(encoded.row))
        columns["tools"].append(row_tools_json(encoded.row))
        columns["targets"].append(encoded.row.targets)
        columns["input_ids"].append(ids)
        columns["assistant_masks"].append(mask)
        columns["labels"].append([token if bit else IGNORE_INDEX for token, bit in zip(ids, mask, strict=True)])
    return columns


def _write_jsonl(path: Path, rows: list[EncodedRow]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for encoded in rows:
            record = {"messages": chat_messages(encoded.row), "tools": row_tools_json(encoded.row)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_dataset_dir(root: Path, version: str, splits: dict[str, list[EncodedRow]], manifest: dict[str, Any]) -> Path:
    """Writes `root/version` completely or not at all; returns its path.

    Raises:
        FileExistsError: the version directory already exists.
    """
    target = root / version
    root.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"dataset directory {target} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=root))
    try:
        packed = any(encoded.rendered.parents is not None for rows in splits.values() for encoded in rows)
        features = Features({**FEATURES, **TREE_FEATURES}) if packed else FEATURES
        tables = {name: Dataset.from_dict(_columns(splits[name], features), features=features) for name in SPLITS}
        # One shard per split even when empty: datasets cannot load back a split saved as 0 shards.
        DatasetDict(tables).save_to_disk(str(staging / "hf"), num_shards=dict.fromkeys(SPLITS, 1))
        for name, table in tables.items():
            table.to_parquet(str(staging / f"{name}.parquet"))
            _write_jsonl(staging / f"{name}.jsonl", splits[name])
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
