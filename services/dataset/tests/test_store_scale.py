"""What keeps lists fast at scale, on both databases: the kept counts per status, the indexes
the filters use, and the migration that adds them to a store written by the previous version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.errors import NotFound
from tracewheel.dataset.curation import CurationSettings, CurationStatus
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.store_schema import SCHEMA_VERSION

TraceFactory = Callable[..., dict[str, Any]]
V2_INDEXES = ("traces_by_suite", "traces_by_task", "traces_by_model", "traces_by_verdict")


def scanned_counts(store: TraceStore) -> dict[CurationStatus, int]:
    """The counts by a scan of every trace (what the kept counts must equal)."""
    counts = dict.fromkeys(CurationStatus, 0)
    with store._transaction("DEFERRED") as db:
        for row in db.execute("SELECT status, COUNT(*) AS n FROM traces GROUP BY status"):
            counts[CurationStatus(row["status"])] = row["n"]
    return counts


def fill(store: TraceStore, make_trace: TraceFactory, count: int) -> None:
    for n in range(count):
        verdict = "passed" if n % 3 else "failed"
        store.ingest(make_trace(f"run-{n:02d}", verdict=verdict, suite=f"s{n % 2}", answer=f"Answer {n}."))


def test_kept_counts_follow_every_ingest_and_status_change(any_store: TraceStore, make_trace: TraceFactory) -> None:
    fill(any_store, make_trace, 9)
    any_store.ingest(make_trace("run-00"))  # a redelivery changes nothing
    assert any_store.count_by_status() == scanned_counts(any_store)
    assert sum(any_store.count_by_status().values()) == 9
    any_store.set_status("run-01", CurationStatus.REJECTED, "wrong page")
    any_store.set_status("run-00", CurationStatus.APPROVED)
    any_store.set_status("run-00", CurationStatus.APPROVED)  # the same status again: no move
    any_store.set_status("run-02", CurationStatus.PENDING)
    assert any_store.count_by_status() == scanned_counts(any_store)
    filtered = any_store.count_by_status(TraceQuery(suite="s1", status=CurationStatus.APPROVED))
    assert sum(filtered.values()) == 4  # the status filter is ignored, the suite one is not


def _back_to_version_1(store: TraceStore) -> None:
    """What a store written by schema version 1 holds: no v2 indexes, no kept counts."""
    with store._transaction() as db:
        for index in V2_INDEXES:
            db.execute(f"DROP INDEX {index}")
        db.execute("DROP TABLE status_counts")
        if db.dialect == "sqlite":
            db.execute("PRAGMA user_version=1")
        else:
            db.execute("UPDATE tracewheel_schema SET version = 1")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_version_1_store_migrates_with_its_counts(
    database: str, tmp_path: Path, make_trace: TraceFactory, request: pytest.FixtureRequest
) -> None:
    location = str(tmp_path / "traces.db") if database == "sqlite" else request.getfixturevalue("postgres_url")
    with TraceStore(location, CurationSettings(approve_verified=False)) as old:
        fill(old, make_trace, 7)
        old.set_status("run-03", CurationStatus.REJECTED, "off task")
        expected = scanned_counts(old)
        _back_to_version_1(old)
    with TraceStore(location) as migrated:
        assert migrated.count_by_status() == expected
        assert expected[CurationStatus.REJECTED] == 1 and sum(expected.values()) == 7
        migrated.ingest(make_trace("run-new"))
        assert migrated.count_by_status() == scanned_counts(migrated)
        with migrated._transaction("DEFERRED") as db:
            if database == "sqlite":
                version = db.execute("PRAGMA user_version").fetchone()[0]
                names = {r["name"] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            else:
                version = db.execute("SELECT version FROM tracewheel_schema").fetchone()["version"]
                names = {r["indexname"] for r in db.execute("SELECT indexname FROM pg_indexes")}
        assert version == SCHEMA_VERSION and set(V2_INDEXES) <= names


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (TraceQuery(), "traces_by_time"),
        (TraceQuery(status=CurationStatus.APPROVED), "traces_by_status"),
        (TraceQuery(suite="s1"), "traces_by_suite"),
        (TraceQuery(task_id="t"), "traces_by_task"),
        (TraceQuery(model="m"), "traces_by_model"),
        (TraceQuery(verdict="passed"), "traces_by_verdict"),
    ],
)
def test_a_filtered_page_is_read_in_index_order(store: TraceStore, query: TraceQuery, index: str) -> None:
    """SQLite's plan for a page: the filter's index, newest first, no sort of the matches."""
    from tracewheel.dataset.store_schema import where_clauses

    clauses, params = where_clauses(query)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    db = sqlite3.connect(store.path)
    plan = " | ".join(
        row[3]
        for row in db.execute(
            f"EXPLAIN QUERY PLAN SELECT t.id FROM traces t {where} ORDER BY t.created_at DESC, t.id DESC LIMIT 51",
            params,
        )
    )
    db.close()
    assert index in plan and "TEMP B-TREE" not in plan, plan


def test_summaries_page_like_the_traces_with_their_columns(any_store: TraceStore, make_trace: TraceFactory) -> None:
    fill(any_store, make_trace, 7)
    any_store.ingest(make_trace("run-late", created_at="2026-11-02T09:30:00Z", suite="s1", task_id="other"))
    any_store.add_tags("run-late", ["look", "again"])
    any_store.set_status("run-01", CurationStatus.REJECTED, "wrong page")
    for query in (TraceQuery(), TraceQuery(suite="s1"), TraceQuery(status=CurationStatus.REJECTED)):
        summaries, traces, token = [], [], ""
        while True:
            page = any_store.list_summaries(query, 2, token)
            assert page.next_page_token == any_store.list_traces(query, 2, token).next_page_token
            summaries += page.traces
            token = page.next_page_token
            if not token:
                break
        traces = any_store.list_traces(query, 50).traces
        assert [s.id for s in summaries] == [t.trace.id for t in traces]
        for summary, stored in zip(summaries, traces, strict=True):
            trace = stored.trace
            assert (summary.status, summary.reason, summary.tags, summary.revision) == (
                stored.status,
                stored.reason,
                stored.tags,
                stored.latest_revision,
            )
            assert (summary.created_at, summary.model, summary.suite, summary.task_id, summary.verdict) == (
                trace.created_at,
                trace.model,
                trace.task.suite if trace.task else "",
                trace.task.task_id if trace.task else "",
                trace.outcome.verdict.value if trace.outcome else "unspecified",
            )
    late = any_store.list_summaries(page_size=1).traces[0]
    assert (late.id, late.tags, late.task_id) == ("run-late", ("again", "look", "verified"), "other")


def test_a_build_reads_the_traces_at_the_asked_revisions(any_store: TraceStore, make_trace: TraceFactory) -> None:
    fill(any_store, make_trace, 3)
    any_store.edit_message("run-01", 0, 4, "Edited.")
    asked = {"run-02": 0, "run-01": 1, "run-00": 0}
    traces = any_store.traces_at(asked)
    assert [t.id for t in traces] == list(asked)
    assert traces == [any_store.get(trace_id, revision).trace for trace_id, revision in asked.items()]
    assert traces[1].messages[4].content == "Edited." and any_store.traces_at({"run-01": 0})[0].messages[4].content
    with pytest.raises(NotFound, match="'run-01' revision 2"):
        any_store.traces_at({"run-00": 0, "run-01": 2})
