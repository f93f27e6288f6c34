"""Importers: Trelis directories, OpenAI JSONL and saved HF datasets, into the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.errors import NotFound
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.importers import (
    ImportedTrace,
    ImportFailure,
    import_traces,
    read_any,
    read_hf_dataset,
    read_openai_jsonl,
    read_trelis_dir,
)
from tracewheel.dataset.store import TraceStore

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "browser_navigate",
            "description": "Navigate to a URL",
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        },
    }
]


def openai_record(question: str, arguments: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are a browsing agent."},
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": "\n\n",
                "reasoning_content": "Open the page.",
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-1",
                        "type": "function",
                        "function": {"name": "browser_navigate", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "chatcmpl-tool-1", "name": "browser_navigate", "content": "Page loaded"},
            {"role": "assistant", "content": "Done.", "reasoning_content": "Loaded."},
        ],
        "tools": TOOLS,
    }


def test_a_workshop_directory_imports_once(store: TraceStore, fixtures_dir: Path) -> None:
    items = list(read_trelis_dir(fixtures_dir / "trelis"))
    assert all(isinstance(item, ImportedTrace) for item in items)
    report = import_traces(store, items)
    assert (report.imported, report.duplicates, report.rejected) == (2, 0, [])
    assert report.by_status == {CurationStatus.PENDING: 1, CurationStatus.REJECTED: 1}
    refused = store.get(items[1].trace.id)  # the run in which the user refused the navigation
    assert refused.reason == "1 tool call(s) rejected by the user (messages[3])"
    first = store.get(items[0].trace.id).trace
    assert first.messages[2].content == "\n\n" and first.messages[2].reasoning_content
    assert [m.role for m in first.messages[2:5]] == ["assistant", "tool", "tool"]
    again = import_traces(store, read_trelis_dir(fixtures_dir / "trelis"))
    assert (again.imported, again.duplicates) == (0, 2)


def test_a_malformed_file_is_reported_and_not_stored(store: TraceStore, fixtures_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(fixtures_dir / "trelis", tmp_path / "traces")
    good = json.loads((tmp_path / "traces" / "trace_20250601_123000.json").read_text())
    good["messages"][2]["tool_calls"][1]["function"]["arguments"] = "{url: 1}"
    (tmp_path / "traces" / "broken.json").write_text(json.dumps(good))
    (tmp_path / "traces" / "truncated.json").write_text('{"model": "x", "messages": [')
    report = import_traces(store, read_trelis_dir(tmp_path / "traces"))
    assert report.imported == 2
    broken, truncated = report.rejected
    assert broken.startswith(
        f"{tmp_path / 'traces' / 'broken.json'}: messages[2].tool_calls[1].function.arguments: not valid"
    )
    assert "truncated.json: not valid JSON" in truncated
    assert len(store.list_traces().traces) == 2


def test_jsonl_with_object_arguments_and_bad_lines(store: TraceStore, tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    bad_tool_message = openai_record("q3", "{}")
    bad_tool_message["messages"][3]["tool_call_id"] = "chatcmpl-tool-unknown"
    lines = [
        json.dumps(openai_record("q1", {"url": "http://127.0.0.1:8400"}) | {"parallel_tool_calls": False}),
        "",
        json.dumps(openai_record("q2", json.dumps({"url": "http://127.0.0.1:8400/b"})) | {"tools": json.dumps(TOOLS)}),
        "{not json",
        json.dumps(bad_tool_message),
        json.dumps(openai_record("q1", {"url": "http://127.0.0.1:8400"})),
    ]
    path.write_text("\n".join(lines) + "\n")
    items = list(read_openai_jsonl(path))
    assert [type(item).__name__ for item in items] == [
        "ImportedTrace",
        "ImportedTrace",
        "ImportFailure",
        "ImportFailure",
        "ImportedTrace",
    ]
    first = items[0]
    assert isinstance(first, ImportedTrace)
    assert first.source == f"{path}:1"
    assert json.loads(first.trace.messages[2].tool_calls[0].function.arguments) == {"url": "http://127.0.0.1:8400"}
    assert first.trace.metadata.source == "import:jsonl"
    assert isinstance(items[2], ImportFailure) and items[2].source == f"{path}:4"
    assert isinstance(items[3], ImportFailure)
    assert items[3].reason.startswith(f"{path}:5: ")
    assert "messages[3]: tool message answers tool_call_id 'chatcmpl-tool-unknown'" in items[3].reason
    report = import_traces(store, items)
    assert (report.imported, report.duplicates, len(report.rejected)) == (2, 1, 2)


def test_a_saved_hf_dataset_imports_every_split(store: TraceStore, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [openai_record(f"q{i}", json.dumps({"url": f"http://127.0.0.1:8400/{i}"})) for i in range(3)]
    for row in rows:
        row["tools"] = json.dumps(row["tools"])  # as Arrow stores tool schemas
    rows[2]["messages"][2]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    saved = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:2]), "test": datasets.Dataset.from_list(rows[2:])}
    )
    saved.save_to_disk(str(tmp_path / "hf"))
    items = list(read_any(tmp_path / "hf"))
    assert [item.source for item in items] == [
        f"{tmp_path / 'hf'}[train] row 0",
        f"{tmp_path / 'hf'}[train] row 1",
        f"{tmp_path / 'hf'}[test] row 0",
    ]
    failure = items[2]
    assert isinstance(failure, ImportFailure)
    assert failure.problems == ["messages[2].tool_calls[0].function.arguments: must be a JSON object, got list"]
    report = import_traces(store, items)
    assert (report.imported, len(report.rejected)) == (2, 1)
    stored = store.get(items[0].trace.id).trace  # type: ignore[union-attr]
    assert stored.tools[0].function.parameters["required"] == ["url"]
    assert stored.messages[1].tool_calls == []  # Arrow's nulls are dropped, not refused


def test_missing_paths_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        list(read_trelis_dir(tmp_path / "nope"))
    with pytest.raises(NotFound):
        list(read_openai_jsonl(tmp_path / "nope.jsonl"))
    with pytest.raises(NotFound):
        list(read_any(tmp_path / "nope.txt"))
    with pytest.raises(NotFound):
        list(read_hf_dataset(tmp_path))
