"""The store on PostgreSQL: several replicas writing at once, and a server that is down at start.

The store's behaviour on both databases is test_store.py's (its `store` runs on each); here are
what only a shared server has: two stores (two dataset replicas) on one database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any, TypeVar

import pytest

from tracewheel.core.errors import Conflict, Unavailable
from tracewheel.core.natsserver import free_port
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.store_postgres import redacted

TraceFactory = Callable[..., dict[str, Any]]
T = TypeVar("T")
REPLICAS = 4


def at_once(calls: list[Callable[[], T]]) -> list[T | Exception]:
    """Runs the calls in threads released together; each one's result or exception."""
    start = Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | Exception:
        start.wait(timeout=30)
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def replicas(postgres_url: str) -> list[TraceStore]:
    stores = [TraceStore(postgres_url) for _ in range(REPLICAS)]
    yield stores  # type: ignore[misc]
    for store in stores:
        store.close()


def test_replicas_ingesting_the_same_traces_at_once_store_each_once(
    replicas: list[TraceStore], make_trace: TraceFactory
) -> None:
    for number in range(5):
        trace = make_trace(trace_id=f"run-{number}")
        results = at_once([lambda store=store, trace=trace: store.ingest(trace) for store in replicas])
        assert [type(r).__name__ for r in results] == ["IngestResult"] * REPLICAS, results
        assert sum(r.created for r in results) == 1  # type: ignore[union-attr]
        assert len({r.status for r in results}) == 1  # type: ignore[union-attr]
    assert [t.trace.id for t in replicas[0].list_traces().traces] == [f"run-{n}" for n in range(4, -1, -1)]
    assert [r.revision for r in replicas[1].revisions("run-0")] == [0]


def test_replicas_editing_one_revision_at_once_make_one_revision(
    replicas: list[TraceStore], make_trace: TraceFactory
) -> None:
    replicas[0].ingest(make_trace())
    edits = [
        lambda store=store, n=n: store.edit_message("run-1", 0, 1, f"edit {n}") for n, store in enumerate(replicas)
    ]
    results = at_once(edits)
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert [r.revision for r in replicas[2].revisions("run-1")] == [0, 1]
    approve = CurationStatus.APPROVED
    stale = at_once([lambda store=store: store.set_status("run-1", approve, "", 0) for store in replicas])
    assert all(isinstance(r, Conflict) for r in stale)  # based on revision 0, now 1


def test_replicas_recording_one_build_version_at_once_record_it_once(
    replicas: list[TraceStore], make_trace: TraceFactory
) -> None:
    replicas[0].ingest(make_trace())
    results = at_once([lambda store=store: store.record_build("ds-0001", ["run-1"]) for store in replicas])
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert [b.version for b in replicas[3].list_builds()] == ["ds-0001"]


def test_a_server_that_is_down_is_a_clear_error_at_once() -> None:
    url = f"postgresql://tracewheel:secret@127.0.0.1:{free_port()}/traces"
    with pytest.raises(Unavailable) as raised:
        TraceStore(url)
    message = str(raised.value)
    assert "cannot reach the trace database at postgresql://tracewheel:***@127.0.0.1:" in message
    assert "secret" not in message and "TW_DATASET_DATABASE_URL" in message
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"


def test_the_service_stops_at_start_when_its_database_is_down(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_DATASET_")} | {
        "TRACEWHEEL_HOME": str(tmp_path),
        "TW_DATASET_DATABASE_URL": f"postgresql://tracewheel:secret@127.0.0.1:{free_port()}/traces",
        "TW_DATASET_GRPC_PORT": str(free_port()),
        "TW_DATASET_HTTP_PORT": str(free_port()),
    }
    started = subprocess.run(
        [sys.executable, "-m", "tracewheel.dataset"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert started.returncode == 1, started.stderr[-2000:]
    assert "dataset: cannot start: cannot reach the trace database at postgresql://tracewheel:***@" in started.stderr
    assert "secret" not in started.stderr
