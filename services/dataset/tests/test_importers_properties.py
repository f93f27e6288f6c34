"""Property tests (hypothesis) of the importers: arbitrary bytes as a JSONL file, a workshop trace
file or an OpenAI record never raise; each bad line or file is one named ImportFailure."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tracewheel.core.errors import TraceValidationError
from tracewheel.dataset.importers import ImportedTrace, ImportFailure, read_any, read_openai_jsonl, trace_from_openai

PROPERTY_SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
)
KEYS = ["messages", "tools", "role", "content", "tool_calls", "function", "name", "arguments", "id", "model"]
records = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)
blobs = st.binary(max_size=400) | st.lists(st.binary(max_size=60) | st.just(b'{"messages": []}'), max_size=6).map(
    b"\n".join
)


@PROPERTY_SETTINGS
@given(data=blobs)
def test_any_bytes_as_a_jsonl_file_are_items_never_an_exception(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.jsonl"
        path.write_bytes(data)
        items = list(read_openai_jsonl(path))
    assert all(isinstance(item, ImportedTrace | ImportFailure) for item in items)
    assert len(items) <= data.count(b"\n") + 1


@PROPERTY_SETTINGS
@given(data=blobs)
def test_any_bytes_as_a_workshop_trace_file_are_one_item(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "trace.json").write_bytes(data)
        items = list(read_any(Path(folder)))
    assert len(items) == 1 and isinstance(items[0], ImportedTrace | ImportFailure)


@PROPERTY_SETTINGS
@given(record=records | json_values)
def test_any_json_as_an_openai_record_raises_only_trace_validation_error(record: Any) -> None:
    with contextlib.suppress(TraceValidationError):
        trace_from_openai(record, "import:jsonl")
