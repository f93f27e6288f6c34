"""The one size policy on the dataset side, and imports that handle each file and line on its own:
the good items are stored, every failure is named, a trace over the limit is kept for a person."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.events import SUBJECT_TRACE_COMPLETED, connect, ensure_streams, publish, run_consumer
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.trace import validate_trace
from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.core.trace_size import REJECTED_DIR, TraceTooLarge
from tracewheel.core.trelis import trace_to_trelis
from tracewheel.dataset.events import INGEST_CONSUMER, DatasetEvents
from tracewheel.dataset.importers import import_traces, read_any
from tracewheel.dataset.store import TraceStore
from tracewheel.v1 import events_pb2

LIMIT = 20_000  # bytes of JSON: the fixtures' traces are a few KB


def oversized(make_trace: Any, trace_id: str) -> dict[str, Any]:
    """A valid trace whose tool result alone is over LIMIT (a page dumped whole, as in the issue)."""
    trace = make_trace(trace_id)
    next(m for m in trace["messages"] if m["role"] == "tool")["content"] = "<div>row</div>" * 2_000
    return trace


@pytest.fixture
def small_store(tmp_path: Path) -> Any:
    with TraceStore(tmp_path / "limited.db", max_trace_bytes=LIMIT) as opened:
        yield opened


def test_the_store_refuses_an_ingest_or_an_edit_over_the_limit(small_store: TraceStore, make_trace: Any) -> None:
    with pytest.raises(TraceTooLarge, match=f"over the limit of {LIMIT} bytes"):
        small_store.ingest(oversized(make_trace, "big"))
    assert small_store.ingest(make_trace("small")).created
    with pytest.raises(TraceTooLarge):
        small_store.edit("small", 0, {**oversized(make_trace, "small")})
    assert small_store.get("small").revision == 0


async def test_an_oversized_trace_over_nats_is_dead_lettered_and_kept_and_the_next_is_stored(
    nats_server: NatsServer, small_store: TraceStore, make_trace: Any, tmp_path: Path
) -> None:
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    events = DatasetEvents(js, small_store, None, threshold=100, debounce_s=60, rejected_home=tmp_path)  # type: ignore[arg-type]
    stop = asyncio.Event()
    consumer = asyncio.create_task(run_consumer(js, INGEST_CONSUMER, events.handle_trace, stop, poll_s=0.2))
    try:
        for trace in (oversized(make_trace, "big"), make_trace("after")):
            payload = events_pb2.TraceCompleted(trace=trace_to_proto(validate_trace(trace)))
            await publish(js, SUBJECT_TRACE_COMPLETED, payload, trace["id"])
        rejected = tmp_path / REJECTED_DIR
        async with asyncio.timeout(30):
            while not small_store.list_traces(None, 10).traces or not list(rejected.glob("*.json")):
                await asyncio.sleep(0.05)
        dead = await js.pull_subscribe(f"deadletter.{SUBJECT_TRACE_COMPLETED}", durable="dead", stream="DEADLETTER")
        (letter,) = await dead.fetch(1, timeout=10)
        assert "over the limit" in letter.headers["Tw-Reason"]
    finally:
        stop.set()
        await events.trigger.cancel()
        await consumer
        await client.close()
    assert [t.trace.id for t in small_store.list_traces(None, 10).traces] == ["after"]
    (kept,) = (tmp_path / REJECTED_DIR).glob("*big*.json")
    assert json.loads(kept.read_text())["id"] == "big"


def test_a_directory_import_stores_the_good_files_and_names_each_failure(
    small_store: TraceStore, make_trace: Any, fixtures_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    for source in sorted((fixtures_dir / "trelis").glob("*.json")):
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "b_not_utf8.json").write_bytes(b'{"model": "m", "messages": [{"role": "user", "content": "\xff"}]}')
    (folder / "c_too_large.json").write_text(json.dumps(trace_to_trelis(validate_trace(oversized(make_trace, "big")))))
    report = import_traces(small_store, read_any(folder))
    assert report.imported == 2
    rejected = sorted(report.rejected)
    assert len(rejected) == 2
    assert rejected[0].startswith(str(folder / "b_not_utf8.json")) and "not valid UTF-8" in rejected[0]
    assert rejected[1].startswith(str(folder / "c_too_large.json")) and "over the limit" in rejected[1]


def test_a_jsonl_import_keeps_its_good_lines_around_bad_ones(small_store: TraceStore, tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    other = {"messages": [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye"}]}
    path = tmp_path / "chats.jsonl"
    lines = [json.dumps(good).encode(), b"{not json", b'{"messages": "\xff\xfe"}', json.dumps(other).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = import_traces(small_store, read_any(path))
    assert report.imported == 2
    assert [r.split(": ", 1)[0] for r in report.rejected] == [f"{path}:2", f"{path}:3"]
    assert "not valid JSON" in report.rejected[0] and "not valid UTF-8" in report.rejected[1]
