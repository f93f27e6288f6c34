"""Reading a dataset folder for the console: which folder a version names, and rows one at a time.

A version from a URL only ever names a folder directly under the artifacts directory (no
separators, no dot folders, no link leading out). Rows are read with pyarrow: only the row
groups that hold the asked rows, and only the columns asked for, so a large build is never
loaded whole for one page. A folder made by hand with only `train.jsonl` is read line by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracewheel.core.dataset_layout import (
    ASSISTANT_MASKS,
    IGNORE_INDEX,
    INPUT_IDS,
    LABELS,
    MANIFEST_FILE,
    MESSAGES,
    PARENTS,
    POSITION_IDS,
    SPLITS,
    TARGETS,
    TRACE_ID,
    jsonl_file,
    parquet_file,
)
from tracewheel.core.errors import NotFound

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def build_folder(artifacts_dir: Path | None, version: str) -> Path:
    """The folder of `version`, directly under `artifacts_dir`.

    Raises:
        NotFound: no artifacts directory on this host, a version that is not a plain folder name
            (`..`, a separator, a leading dot), or no such folder.
    """
    if artifacts_dir is None:
        raise NotFound("the dataset folders are not on this host (no artifacts directory is configured)")
    if not _VERSION.fullmatch(version) or ".." in version:
        raise NotFound(
            f"{version!r} is not a dataset version: a version is a folder name like ds-20261101-100000-ab12cd34"
        )
    root = artifacts_dir.resolve()
    folder = (root / version).resolve()
    if folder.parent != root or not folder.is_dir():
        raise NotFound(f"no dataset folder {version!r} under {artifacts_dir}")
    return folder


def check_split(split: str) -> str:
    """`split` when it is one of the layout's splits.

    Raises:
        NotFound: any other name.
    """
    if split not in SPLITS:
        raise NotFound(f"no split {split!r}: a build has the splits {' and '.join(SPLITS)}")
    return split


def folder_versions(artifacts_dir: Path | None) -> list[str]:
    """The dataset folders under `artifacts_dir` (with a manifest or a train split), by name."""
    if artifacts_dir is None or not artifacts_dir.is_dir():
        return []
    markers = (MANIFEST_FILE, parquet_file("train"), jsonl_file("train"))
    return sorted(
        entry.name
        for entry in artifacts_dir.iterdir()
        if _VERSION.fullmatch(entry.name) and entry.is_dir() and any((entry / name).is_file() for name in markers)
    )


def has_parquet(folder: Path, split: str) -> bool:
    return (folder / parquet_file(split)).is_file()


def _jsonl_lines(folder: Path, split: str) -> Iterator[str]:
    path = folder / jsonl_file(split)
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as lines:
        yield from (line for line in lines if line.strip())


def split_size(folder: Path, split: str) -> int:
    """How many rows the split holds (parquet metadata, else the JSONL's lines, else 0)."""
    if has_parquet(folder, split):
        return int(pq.ParquetFile(folder / parquet_file(split)).metadata.num_rows)
    return sum(1 for _ in _jsonl_lines(folder, split))


def _read_rows(path: Path, start: int, count: int, columns: list[str]) -> list[dict[str, Any]]:
    """Rows `start` to `start + count` of a parquet file, reading only the row groups they are in."""
    table = pq.ParquetFile(path)
    present = [name for name in columns if name in table.schema_arrow.names]
    pieces: list[pa.Table] = []
    first = 0
    for group in range(table.metadata.num_row_groups):
        size = table.metadata.row_group(group).num_rows
        low, high = max(start, first), min(start + count, first + size)
        if low < high:
            pieces.append(table.read_row_group(group, columns=present).slice(low - first, high - low))
        first += size
    return [row for piece in pieces for row in piece.to_pylist()]


def trained_flags(row: dict[str, Any]) -> list[bool]:
    """Which tokens the trainer trains: labels not IGNORE_INDEX (the assistant mask without labels)."""
    if row.get(LABELS) is not None:
        return [label != IGNORE_INDEX for label in row[LABELS]]
    return [bool(bit) for bit in row.get(ASSISTANT_MASKS) or []]


@dataclass(frozen=True)
class RowSummary:
    index: int
    trace_id: str
    tokens: int | None
    """None: a JSONL row (no tokens stored)."""
    trained: int | None


def row_summaries(folder: Path, split: str, start: int, count: int) -> list[RowSummary]:
    """Rows `start` to `start + count` of a split: trace id, tokens and trained tokens."""
    if has_parquet(folder, split):
        rows = _read_rows(folder / parquet_file(split), start, count, [TRACE_ID, LABELS, ASSISTANT_MASKS])
        return [
            RowSummary(start + offset, row.get(TRACE_ID) or "", len(flags), sum(flags))
            for offset, row in enumerate(rows)
            for flags in [trained_flags(row)]
        ]
    summaries = []
    for index, line in enumerate(_jsonl_lines(folder, split)):
        if index >= start + count:
            break
        if index >= start:
            summaries.append(RowSummary(index, _jsonl_trace_id(line), None, None))
    return summaries


def _jsonl_trace_id(line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return ""
    trace_id = record.get(TRACE_ID) if isinstance(record, dict) else None
    return trace_id if isinstance(trace_id, str) else ""


@dataclass(frozen=True)
class StoredRow:
    """One row as stored: the parquet columns when there is a parquet file, else the JSONL line.

    Attributes:
        columns: trace_id, input_ids, labels, assistant_masks, targets, messages and the packed
            columns (position_ids, parents) where the file has them; empty for a JSONL row.
        jsonl: the JSONL line as it is written (pretty-printed when it is JSON); "" for parquet.
    """

    index: int
    size: int
    columns: dict[str, Any]
    jsonl: str = ""

    @property
    def trace_id(self) -> str:
        return self.columns.get(TRACE_ID) or (_jsonl_trace_id(self.jsonl) if self.jsonl else "")


ROW_COLUMNS = [TRACE_ID, INPUT_IDS, LABELS, ASSISTANT_MASKS, TARGETS, MESSAGES, POSITION_IDS, PARENTS]


def read_row(folder: Path, split: str, index: int) -> StoredRow:
    """Row `index` of a split.

    Raises:
        NotFound: the split has no such row (its size is in the message).
    """
    size = split_size(folder, split)
    if not 0 <= index < size:
        raise NotFound(f"the {split} split of {folder.name} has {size} rows; there is no row {index}")
    if has_parquet(folder, split):
        return StoredRow(index, size, _read_rows(folder / parquet_file(split), index, 1, ROW_COLUMNS)[0])
    line = next(line for number, line in enumerate(_jsonl_lines(folder, split)) if number == index)
    try:
        text = json.dumps(json.loads(line), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        text = line
    return StoredRow(index, size, {}, text)
