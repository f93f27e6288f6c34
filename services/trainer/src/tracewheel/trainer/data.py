"""Reading a dataset directory built by the dataset service (names and manifest:
`tracewheel.core.dataset_layout`).

Contract (docs/trainer.md): `manifest.json` (`Manifest`: version, base_model, template_sha256, ...), then
- `hf/` (preferred when present): a `save_to_disk` DatasetDict (`train`, `eval`) already
  tokenized by the dataset service, with `input_ids` and `labels` (-100 off the target turns).
  Used as is: a row unrolled at user turns holds earlier queries' assistant turns as context,
  and only these labels keep them out of the loss (TRL's own assistant_only_loss would train
  every assistant turn of the row again). A build with packed prefix-tree rows also has
  `position_ids` and `parents` (trainer/prefix_tree.py), kept as they are;
- otherwise `train.jsonl` and optional `eval.jsonl`, one TRL conversational row per line:
  `{"messages": [...], "tools": "<json string>"}` (tool-call arguments as JSON strings), which
  TRL tokenizes with the training template and assistant_only_loss (every assistant turn).

`tools` stays a JSON string in the HF Dataset (TRL parses it per row): as a list of dicts,
Arrow would merge every tool's parameter schema into one struct and render `null` properties
into the prompt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from tracewheel.core.dataset_layout import (
    HF_DIR,
    IGNORE_INDEX,
    INPUT_IDS,
    LABELS,
    MESSAGES,
    PARENTS,
    TOOLS,
    TREE_COLUMNS,
    Manifest,
    ManifestError,
    jsonl_file,
    read_manifest,
)
from tracewheel.core.errors import InvalidArgument

log = logging.getLogger(__name__)


class DatasetError(InvalidArgument):
    """The dataset directory is missing, corrupt, or has rows the trainer cannot learn from."""


@dataclass(frozen=True)
class TrainingData:
    train: Dataset
    eval: Dataset | None
    manifest: Manifest
    pretokenized: bool = False  # input_ids + labels (from hf/), else conversational rows

    @property
    def prefix_tree(self) -> bool:
        """Rows packed as prefix trees (position_ids and parents columns)."""
        return self.pretokenized and PARENTS in self.train.column_names


def _check_row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict) or not isinstance(row.get(MESSAGES), list) or not row[MESSAGES]:
        raise DatasetError(f"{where}: expected an object with a non-empty 'messages' list")
    roles = [m.get("role") if isinstance(m, dict) else None for m in row[MESSAGES]]
    if None in roles:
        raise DatasetError(f"{where}: every message needs a 'role'")
    if "assistant" not in roles:
        raise DatasetError(f"{where}: no assistant turn, so nothing to learn (assistant-only loss)")
    tools = row.get(TOOLS)
    if tools is None or tools == "":
        tools = "[]"
    if not isinstance(tools, str):
        tools = json.dumps(tools)  # tolerate a list; see the module docstring for why a string
    try:
        parsed = json.loads(tools)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: 'tools' is not valid JSON ({exc})") from None
    if not isinstance(parsed, list):
        raise DatasetError(f"{where}: 'tools' must be a JSON list of function tools")
    return {MESSAGES: row[MESSAGES], TOOLS: tools}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Validated rows of one JSONL split.

    Raises:
        DatasetError: a line is not JSON or not a trainable conversation (names file and line).
    """
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON ({exc})") from None
            rows.append(_check_row(row, where))
    return rows


def _pretokenized(split: Dataset, where: str) -> Dataset:
    missing = {INPUT_IDS, LABELS} - set(split.column_names)
    if missing:
        raise DatasetError(f"{where} lacks column(s) {', '.join(sorted(missing))}")
    tree = [name for name in TREE_COLUMNS if name in split.column_names]
    split = split.select_columns([INPUT_IDS, LABELS, *tree])
    for index, labels in enumerate(split[LABELS]):
        if all(label == IGNORE_INDEX for label in labels):
            raise DatasetError(f"{where} row {index}: every label is -100, so nothing to learn")
    return split


def _drop_long(split: Dataset, max_length: int | None, where: str) -> Dataset:
    """Drops rows longer than `max_length` tokens. Never truncates: a row's supervised turns
    are at its end, so cutting it would train on a task without its answer."""
    if max_length is None:
        return split
    lengths = [len(ids) for ids in split[INPUT_IDS]]
    keep = [index for index, length in enumerate(lengths) if length <= max_length]
    if len(keep) < len(lengths):
        log.warning(
            "%s: dropped %d of %d rows longer than max_length %d (longest %d tokens)",
            where,
            len(lengths) - len(keep),
            len(lengths),
            max_length,
            max(lengths),
        )
    if lengths and not keep:
        raise DatasetError(
            f"{where}: every row is longer than max_length {max_length} (shortest {min(lengths)} tokens), the"
            " length the dataset was built with; build it again with a larger TW_DATASET_MAX_LENGTH"
        )
    return split.select(keep)


def _load_hf(hf_dir: Path, max_length: int | None = None) -> tuple[Dataset, Dataset | None]:
    from datasets import DatasetDict, load_from_disk

    try:
        splits = load_from_disk(str(hf_dir))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{hf_dir} is not a readable save_to_disk dataset ({exc})") from None
    if not isinstance(splits, DatasetDict) or "train" not in splits or len(splits["train"]) == 0:
        raise DatasetError(f"{hf_dir} must be a DatasetDict with a non-empty 'train' split")
    train = _drop_long(_pretokenized(splits["train"], f"{hf_dir}/train"), max_length, f"{hf_dir}/train")
    if "eval" not in splits or len(splits["eval"]) == 0:
        return train, None
    eval_split = _pretokenized(splits["eval"], f"{hf_dir}/eval")
    kept = [i for i, ids in enumerate(eval_split[INPUT_IDS]) if max_length is None or len(ids) <= max_length]
    return train, eval_split.select(kept) if kept else None


def read_dataset_manifest(dataset_dir: Path) -> Manifest:
    """The manifest of a dataset directory.

    Raises:
        DatasetError: the directory or its manifest is missing or not valid.
    """
    if not dataset_dir.is_dir():
        raise DatasetError(f"dataset directory {dataset_dir} does not exist")
    try:
        return read_manifest(dataset_dir)
    except ManifestError as exc:
        raise DatasetError(str(exc)) from None


def load_training_data(dataset_dir: Path, max_length: int | None = None) -> TrainingData:
    """The train (and eval, if present and non-empty) splits of a dataset directory.

    Pre-tokenized rows longer than `max_length` are dropped (and logged), never truncated.

    Raises:
        DatasetError: the directory, manifest or train split is missing or corrupt, or every
            train row is longer than `max_length`.
    """
    manifest = read_dataset_manifest(dataset_dir)
    if (dataset_dir / HF_DIR).is_dir():
        train, eval_split = _load_hf(dataset_dir / HF_DIR, max_length)
        return TrainingData(train=train, eval=eval_split, manifest=manifest, pretokenized=True)
    train_path = dataset_dir / jsonl_file("train")
    if not train_path.exists():
        raise DatasetError(f"{train_path} is missing")
    train_rows = read_rows(train_path)
    if not train_rows:
        raise DatasetError(f"{train_path} has no rows")
    eval_path = dataset_dir / jsonl_file("eval")
    eval_rows = read_rows(eval_path) if eval_path.exists() else []
    return TrainingData(
        train=Dataset.from_list(train_rows),
        eval=Dataset.from_list(eval_rows) if eval_rows else None,
        manifest=manifest,
    )
