"""Previous / next trace in a filtered list."""

from __future__ import annotations

import pytest

from tracewheel.core.errors import NotFound
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.store import TraceStore


@pytest.fixture
def store(any_store: TraceStore) -> TraceStore:
    """On SQLite and on PostgreSQL (conftest.any_store)."""
    return any_store


def test_neighbours_follow_list_order_even_after_the_trace_leaves_the_filter(store, make_trace) -> None:
    for day in (1, 2, 3):
        store.ingest(
            make_trace(f"run-{day}", task_id=f"t{day}", verdict="failed", created_at=f"2026-11-0{day}T10:00:00Z")
        )
    pending = TraceQuery(status=CurationStatus.PENDING)
    assert store.neighbours("run-2", pending) == ("run-3", "run-1")
    store.set_status("run-2", CurationStatus.APPROVED)
    assert store.neighbours("run-2", pending) == ("run-3", "run-1")
    assert store.neighbours("run-3", pending) == (None, "run-1")
    assert store.neighbours("run-1") == ("run-2", None)
    with pytest.raises(NotFound):
        store.neighbours("nope")
