"""Curation and builds from the terminal against the dataset service's own servicer and store:
every `--json` is one JSON document on stdout; bad input is one stderr line and its exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tracewheel.core.trelis import trace_from_trelis
from tracewheel.v1 import dataset_pb2_grpc

from .cli_services import TRELIS_DIR, BackgroundLoop, dataset_service, run_cli, serve


@pytest.fixture
def dataset(background: BackgroundLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The dataset service on a free port, which the CLI finds through TRACEWHEEL_DATASET_GRPC."""
    servicer, store = dataset_service(tmp_path)
    register = lambda server: dataset_pb2_grpc.add_DatasetServicer_to_server(servicer, server)  # noqa: E731
    server, address = background.run(serve("Dataset", register))
    monkeypatch.setenv("TRACEWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRACEWHEEL_DATASET_GRPC", address)
    yield store
    background.run(server.stop(0))
    store.close()


def json_of(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """The command's whole stdout as one JSON document (exit 0 asserted)."""
    ran = run_cli(capsys, *argv, "--json")
    assert ran.code == 0, ran.err
    return json.loads(ran.out)


def test_traces_are_imported_curated_tagged_exported_and_built(dataset, capsys, tmp_path: Path) -> None:
    ran = run_cli(capsys, "traces", "import", str(TRELIS_DIR), "--json")
    assert ran.code == 0 and json.loads(ran.out) == {"imported": 2, "already_stored": 0, "rejected": []}
    assert "2/2 traces" in ran.err  # the progress went to stderr
    first, second = sorted(row["id"] for row in json_of(capsys, "traces", "list"))

    shown = json_of(capsys, "traces", "show", first)
    assert shown["status"] == "pending" and shown["revision"] == 0 and shown["trace"]["id"] == first
    human = run_cli(capsys, "traces", "show", first)
    assert human.code == 0 and "browser_navigate" in human.out and "pending" in human.out

    approved = json_of(capsys, "traces", "approve", first, "--revision", "0")
    rejected = json_of(capsys, "traces", "reject", second, "--reason", "answers the wrong product")
    assert [row["status"] for row in approved + rejected] == ["approved", "rejected"]
    assert json_of(capsys, "traces", "tag", first, "--add", "kettle")[0]["tags"] == ["kettle"]

    exported = tmp_path / "approved.jsonl"
    summary = json_of(capsys, "traces", "export", "--status", "approved", "--format", "jsonl", "-o", str(exported))
    assert summary == {"path": str(exported), "format": "jsonl", "traces": 1}
    assert [trace_from_trelis(json.loads(line)).id for line in exported.read_text().splitlines()] == [first]
    table = tmp_path / "all.parquet"
    json_of(capsys, "traces", "export", "--format", "parquet", "-o", str(table))
    rows = pq.read_table(table).to_pylist()
    assert {(r["id"], r["status"]) for r in rows} == {(first, "approved"), (second, "rejected")}
    assert all(json.loads(r["trace"])["messages"] for r in rows)

    built = json_of(capsys, "dataset", "build")
    assert built["trace_ids"] == [first] and built["train_rows"] >= 1
    assert [b["version"] for b in json_of(capsys, "dataset", "list")] == [built["version"]]
    assert json_of(capsys, "dataset", "show", built["version"]) == built


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["traces", "show", "no-such-trace"], "'no-such-trace' is not in the store"),
        (["traces", "approve", "no-such-trace"], "'no-such-trace' is not in the store"),
        (["dataset", "show", "ds-none"], "no dataset build 'ds-none'"),
        (["traces", "tag", "no-such-trace"], "give tags to --add, --remove or both"),
    ],
)
def test_unknown_ids_are_usage_errors_in_one_line(dataset, capsys, argv: list[str], says: str) -> None:
    ran = run_cli(capsys, *argv, "--json")
    assert ran.code == 2 and ran.out == ""
    assert says in ran.err and len(ran.err.strip().splitlines()) == 1 and "Traceback" not in ran.err


def test_a_stale_revision_is_refused_and_says_how_to_see_the_current(dataset, capsys) -> None:
    run_cli(capsys, "traces", "import", str(TRELIS_DIR))
    trace_id = json_of(capsys, "traces", "list")[0]["id"]
    dataset.edit_message(trace_id, 0, 1, "Open the shop and name its first product.")  # someone edited it

    ran = run_cli(capsys, "traces", "approve", trace_id, "--revision", "0")

    assert ran.code == 2 and ran.out == ""
    (line,) = ran.err.strip().splitlines()
    assert "is at revision 1, not 0" in line and "tracewheel traces show ID" in line


def test_a_rejection_needs_a_reason(dataset, capsys) -> None:
    ran = run_cli(capsys, "traces", "reject", "some-id")
    assert ran.code == 2 and "--reason" in ran.err
