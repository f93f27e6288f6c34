"""`tracewheel traces import` handles each file and line on its own against the dataset service's
own servicer: the good traces are stored, every failure is listed by name, a trace over the size
limit is kept in <home>/rejected/, and nothing stops the items after a bad one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.trace import Message, Trace
from tracewheel.core.trace_size import REJECTED_DIR
from tracewheel.core.trelis import trace_to_trelis
from tracewheel.v1 import dataset_pb2_grpc

from .cli_services import TRELIS_DIR, BackgroundLoop, run_cli, serve

STORE_LIMIT = 50_000


@pytest.fixture
def dataset(background: BackgroundLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The dataset servicer over a store that refuses traces over STORE_LIMIT bytes."""
    from tracewheel.dataset.server import DatasetServicer
    from tracewheel.dataset.store import TraceStore

    store = TraceStore(tmp_path / "traces.db", max_trace_bytes=STORE_LIMIT)

    async def ingest(trace: Any) -> Any:
        return store.ingest(trace)

    async def build(*, force: bool) -> Any:
        raise AssertionError("no build here")

    servicer = DatasetServicer(store, ingest, build)
    register = lambda server: dataset_pb2_grpc.add_DatasetServicer_to_server(servicer, server)  # noqa: E731
    server, address = background.run(serve("Dataset", register))
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRACEWHEEL_DATASET_GRPC", address)
    monkeypatch.delenv("TRACEWHEEL_MAX_TRACE_BYTES", raising=False)
    yield store
    background.run(server.stop(0))
    store.close()


def _trelis(trace_id: str, size: int) -> str:
    trace = Trace(id=trace_id, model="m", messages=[Message(role="user", content="x" * size)])
    return json.dumps(trace_to_trelis(trace))


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "import"
    folder.mkdir()
    for source in sorted(TRELIS_DIR.glob("*.json")):
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "a_not_utf8.json").write_bytes(b'{"model": "m", "messages": [{"role": "user", "content": "\xff"}]}')
    (folder / "b_large.json").write_text(_trelis("large", 100_000))
    return folder


def test_a_directory_with_bad_files_imports_the_good_ones_and_names_each_failure(
    dataset: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEWHEEL_MAX_TRACE_BYTES", "20000")  # the CLI refuses before sending
    folder = _folder(tmp_path)
    ran = run_cli(capsys, "traces", "import", str(folder), "--json")
    assert ran.code == 1 and "Traceback" not in ran.err
    summary = json.loads(ran.out)
    assert (summary["imported"], summary["already_stored"]) == (2, 0)
    first, second = summary["rejected"]
    assert first.startswith(f"{folder / 'a_not_utf8.json'}: ") and "not valid UTF-8" in first
    assert second.startswith(f"{folder / 'b_large.json'}: ") and "over the limit of 20000 bytes" in second
    (kept,) = (tmp_path / "home" / REJECTED_DIR).glob("*large*.json")
    assert json.loads(kept.read_text())["id"] == "large"


def test_a_trace_the_service_refuses_is_listed_and_the_rest_go_on(
    dataset: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "chats.jsonl"
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    large = {"messages": [{"role": "user", "content": "y" * 100_000}, {"role": "assistant", "content": "ok"}]}
    lines = [json.dumps(large).encode(), b"{not json", b'{"messages": "\xff"}', json.dumps(chat).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    ran = run_cli(capsys, "traces", "import", str(path), "--json")
    assert ran.code == 1 and "Traceback" not in ran.err
    summary = json.loads(ran.out)
    assert summary["imported"] == 1
    assert [r.split(": ", 1)[0] for r in summary["rejected"]] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    assert f"over the limit of {STORE_LIMIT} bytes" in summary["rejected"][0]  # the service's own limit
    assert "refused by the dataset service" in summary["rejected"][0]
