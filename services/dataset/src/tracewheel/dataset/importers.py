"""Importing traces from files: Trelis workshop directories, OpenAI JSONL, HF datasets on disk.

Each reader yields, per item, either an `ImportedTrace` (where it came from and the validated
Trace) or an `ImportFailure` naming the file and line or row, and the problems with their
message index. Every file and every line stands on its own: a file that is not UTF-8, a line
that is not JSON, a trace over the size limit is one failure, and the items after it are read.
`import_traces` stores the good ones and counts the rest; a malformed item stores nothing.

OpenAI-style records are `{"messages": [...], "tools": [...]}`; `tools` may be a JSON string
(as in Arrow), tool-call arguments may be objects or JSON strings, and keys that Arrow filled
with null are dropped. Their ids are content hashes, so importing a file twice stores it once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.errors import NotFound, TraceValidationError
from tracewheel.core.trace import Trace
from tracewheel.core.trace_size import TraceTooLarge
from tracewheel.core.trelis import read_trelis_file, trace_from_trelis
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.store import TraceStore

logger = logging.getLogger(__name__)

_IGNORED_KEYS = ("parallel_tool_calls",)  # an OpenAI fine-tuning option, not part of the conversation


@dataclass(frozen=True)
class ImportedTrace:
    source: str
    trace: Trace


@dataclass(frozen=True)
class ImportFailure:
    source: str
    problems: list[str]

    @property
    def reason(self) -> str:
        return f"{self.source}: " + "; ".join(self.problems)


ImportItem = ImportedTrace | ImportFailure


class ImportReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    imported: int = 0
    """Traces stored by this import."""
    duplicates: int = 0
    """Traces whose id was already stored (a file imported again): nothing changed."""
    flagged_duplicates: int = 0
    """Stored, but curation found the same task, tool calls and answer in a stored trace."""
    by_status: dict[CurationStatus, int] = Field(default_factory=dict)
    """The curation status the stored traces got."""
    rejected: list[str] = Field(default_factory=list)
    """Malformed items, nothing stored: `source: problem; problem`."""


def read_trelis_dir(directory: Path) -> Iterator[ImportItem]:
    """Reads every `*.json` workshop trace file in a directory, in name order.

    Raises:
        NotFound: the directory does not exist.
    """
    if not directory.is_dir():
        raise NotFound(f"{directory}: not a directory of trace files")
    for path in sorted(directory.glob("*.json")):
        yield from _read_one_trelis_file(path)


def _normalize_call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    call = {key: value for key, value in call.items() if value is not None}
    function = call.get("function")
    if isinstance(function, dict) and isinstance(function.get("arguments"), dict):
        call["function"] = {**function, "arguments": json.dumps(function["arguments"], ensure_ascii=False)}
    return call


def _normalize_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    message = {key: value for key, value in message.items() if value is not None}
    if isinstance(message.get("tool_calls"), list):
        message["tool_calls"] = [_normalize_call(call) for call in message["tool_calls"]]
    return message


def _normalize_tools(tools: Any) -> Any:
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise TraceValidationError([f"tools: not valid JSON ({exc.msg} at char {exc.pos})"]) from None
    if not isinstance(tools, list):
        return tools
    return [_normalize_tool(tool) for tool in tools]


def _normalize_tool(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("parameters"), str):
        return tool
    return {**tool, "function": {**function, "parameters": json.loads(function["parameters"])}}


def trace_from_openai(record: Any, source: str) -> Trace:
    """A Trace from an OpenAI-style `{messages, tools}` record (module docstring for the leniencies).

    Raises:
        TraceValidationError: the record is not an object or not a valid conversation.
    """
    if not isinstance(record, dict):
        raise TraceValidationError([f"a record is a JSON object with messages, got {type(record).__name__}"])
    data = {key: value for key, value in record.items() if value is not None and key not in _IGNORED_KEYS}
    if isinstance(data.get("messages"), list):
        data["messages"] = [_normalize_message(message) for message in data["messages"]]
    try:
        data["tools"] = _normalize_tools(data.get("tools") or [])
    except json.JSONDecodeError as exc:
        raise TraceValidationError([f"tools: a parameters schema is not valid JSON ({exc.msg})"]) from None
    return trace_from_trelis(data, source=source)


def read_openai_jsonl(path: Path) -> Iterator[ImportItem]:
    """Reads one `{messages, tools}` object per line; blank lines are skipped.

    Raises:
        NotFound: the file does not exist.
    """
    if not path.is_file():
        raise NotFound(f"{path}: no such JSONL file")
    with path.open("rb") as lines:  # bytes: a line that is not UTF-8 fails alone
        for number, raw in enumerate(lines, start=1):
            source = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield ImportFailure(source, [f"not valid UTF-8: byte {exc.start} of the line"])
                continue
            if not line.strip():
                continue
            try:
                yield ImportedTrace(source, trace_from_openai(json.loads(line), "import:jsonl"))
            except json.JSONDecodeError as exc:
                yield ImportFailure(source, [f"not valid JSON: {exc.msg} at column {exc.colno}"])
            except TraceValidationError as exc:
                yield ImportFailure(source, exc.problems)


def read_hf_dataset(path: Path) -> Iterator[ImportItem]:
    """Reads a dataset saved with `save_to_disk` (a Dataset or every split of a DatasetDict).

    Raises:
        NotFound: the path holds no saved dataset.
    """
    import datasets  # heavy; only this reader needs it

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no dataset saved with save_to_disk here ({exc})") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, dataset in splits:
        label = f"{path}[{split}]" if split else str(path)
        for number, record in enumerate(dataset):
            source = f"{label} row {number}"
            try:
                yield ImportedTrace(source, trace_from_openai(record, "import:hf"))
            except TraceValidationError as exc:
                yield ImportFailure(source, exc.problems)


def read_any(path: Path) -> Iterator[ImportItem]:
    """Picks the reader from the path: a saved HF dataset, a `.jsonl` file, a `.json` file, a directory.

    Raises:
        NotFound: nothing readable at the path.
    """
    if path.is_dir() and any((path / marker).exists() for marker in ("dataset_info.json", "dataset_dict.json")):
        return read_hf_dataset(path)
    if path.is_dir():
        return read_trelis_dir(path)
    if path.suffix == ".jsonl":
        return read_openai_jsonl(path)
    if path.suffix == ".json" and path.is_file():
        return _read_one_trelis_file(path)
    raise NotFound(f"{path}: expected a directory of trace files, a .json or .jsonl file, or a saved HF dataset")


def _read_one_trelis_file(path: Path) -> Iterator[ImportItem]:
    try:
        yield ImportedTrace(str(path), read_trelis_file(path))
    except TraceValidationError as exc:
        yield ImportFailure(str(path), [problem.removeprefix(f"{path}: ") for problem in exc.problems])
    except UnicodeDecodeError as exc:
        yield ImportFailure(str(path), [f"not valid UTF-8: byte {exc.start} of the file"])
    except OSError as exc:
        yield ImportFailure(str(path), [f"unreadable: {exc}"])


def import_traces(store: TraceStore, items: Iterable[ImportItem]) -> ImportReport:
    """Stores every good item (curation rules run on each) and reports what happened.

    Raises:
        NotFound: the reader's path does not exist (readers check it when the first item is asked for).
    """
    report = ImportReport()
    statuses: Counter[CurationStatus] = Counter()
    for item in items:
        if isinstance(item, ImportFailure):
            logger.warning("import: skipped %s", item.reason)
            report.rejected.append(item.reason)
            continue
        try:
            result = store.ingest(item.trace)
        except TraceTooLarge as exc:
            logger.warning("import: skipped %s: %s", item.source, exc)
            report.rejected.append(f"{item.source}: {exc}")
            continue
        if not result.created:
            report.duplicates += 1
            continue
        report.imported += 1
        statuses[result.status] += 1
        report.flagged_duplicates += "duplicate" in result.tags
    report.by_status = dict(statuses)
    logger.info(
        "import: %d stored, %d already stored, %d rejected", report.imported, report.duplicates, len(report.rejected)
    )
    return report
