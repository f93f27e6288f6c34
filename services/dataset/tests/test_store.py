"""The trace store: idempotent ingest, curation state, revisions, lists, and nothing half-written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, TraceValidationError
from tracewheel.dataset.curation import CurationSettings, CurationStatus
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.store_schema import SCHEMA_VERSION

TraceFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def store(any_store: TraceStore) -> TraceStore:
    """Every test here runs on SQLite and on PostgreSQL (conftest.any_store)."""
    return any_store


def test_ingest_is_idempotent_by_id(store: TraceStore, make_trace: TraceFactory) -> None:
    first = store.ingest(make_trace())
    assert (first.created, first.status, first.tags) == (True, CurationStatus.APPROVED, ("verified",))
    store.set_status("run-1", CurationStatus.REJECTED, "wrong product")
    again = store.ingest(make_trace(answer="changed on the way"))
    assert (again.created, again.status, again.reason) == (False, CurationStatus.REJECTED, "wrong product")
    stored = store.get("run-1")
    assert stored.trace.messages[-1].content == "The Red kettle."
    assert stored.revision == stored.latest_revision == 0


def test_ingest_flags_a_duplicate_of_a_stored_trace(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace("run-1"))
    result = store.ingest(make_trace("run-2"))
    assert (result.status, result.reason) == (CurationStatus.PENDING, "duplicate of run-1")
    assert store.get("run-2").tags == ("duplicate", "verified")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["messages"].pop(2), "messages[2]: tool message answers tool_call_id"),
        (
            lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments="{'url': 1}"),
            "messages[2].tool_calls[0].function.arguments: not valid JSON",
        ),
        (lambda d: d["messages"][1].update(role="robot"), "messages[1].role"),
        (lambda d: d.update(messages=[]), "messages: List should have at least 1 item"),
    ],
)
def test_a_malformed_trace_is_refused_and_nothing_stored(
    store: TraceStore, make_trace: TraceFactory, mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    data = make_trace()
    mutate(data)
    with pytest.raises(TraceValidationError) as caught:
        store.ingest(data)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert store.list_traces().traces == []
    with pytest.raises(NotFound):
        store.get("run-1")


def test_a_failure_mid_ingest_leaves_nothing(
    store: TraceStore, make_trace: TraceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(TraceStore, "_insert_tags", staticmethod(broken))
    with pytest.raises(sqlite3.OperationalError):
        store.ingest(make_trace())
    monkeypatch.undo()
    with pytest.raises(NotFound):
        store.get("run-1")
    assert store.ingest(make_trace()).created


def test_edits_make_revisions_and_keep_the_original(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace())
    edited = store.edit_message("run-1", 0, 4, "It is the Red kettle.")
    assert (edited.revision, edited.status) == (1, CurationStatus.APPROVED)
    stripped = store.strip_guidance("run-1", 1)
    assert stripped.revision == 2
    assert stripped.trace.messages[0].role == "user"
    assert store.get("run-1", 0).trace.messages[0].role == "system"
    assert store.get("run-1", 0).latest_revision == 2
    assert store.get("run-1", 1).trace.messages[4].content == "It is the Red kettle."
    summaries = [info.summary for info in store.revisions("run-1")]
    assert summaries == ["ingest", "edit messages[4].content", "strip guidance prompt"]
    with pytest.raises(NotFound, match="has no revision 7; the latest is 2"):
        store.get("run-1", 7)


def test_a_stale_edit_is_a_conflict(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace())
    store.edit_message("run-1", 0, 4, "first edit")
    with pytest.raises(Conflict, match="at revision 1, not 0"):
        store.edit_message("run-1", 0, 4, "second edit from a stale page")
    with pytest.raises(Conflict):
        store.edit("run-1", 0, make_trace(answer="x"))
    with pytest.raises(Conflict):
        store.set_status("run-1", CurationStatus.APPROVED, base_revision=0)
    assert store.get("run-1").trace.messages[4].content == "first edit"


def test_an_edit_is_validated_like_ingest(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace())
    bad = make_trace()
    bad["messages"][3]["tool_call_id"] = "chatcmpl-tool-nobody"
    with pytest.raises(TraceValidationError, match=r"messages\[3\]: tool message answers"):
        store.edit("run-1", 0, bad)
    with pytest.raises(InvalidArgument, match="keeps the trace id"):
        store.edit("run-1", 0, make_trace("run-2"))
    with pytest.raises(FailedPrecondition):
        store.delete_turn("run-1", 0, 3)
    assert store.edit("run-1", 0, make_trace()).revision == 0  # nothing changed, no revision
    assert [info.revision for info in store.revisions("run-1")] == [0]


def test_delete_turn_removes_the_tool_results(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace())
    edited = store.delete_turn("run-1", 0, 2)
    assert [m.role for m in edited.trace.messages] == ["system", "user", "assistant"]
    assert store.revisions("run-1")[-1].summary == "delete messages[2, 3]"


def test_status_tags_and_notes(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace(verdict="failed"))
    with pytest.raises(InvalidArgument, match="a rejection needs a reason"):
        store.set_status("run-1", CurationStatus.REJECTED)
    assert store.set_status("run-1", CurationStatus.APPROVED, base_revision=0).status == CurationStatus.APPROVED
    assert store.add_tags("run-1", ["good-example", " hard "]).tags == ("good-example", "hard")
    assert store.remove_tags("run-1", ["hard", "absent"]).tags == ("good-example",)
    assert store.set_notes("run-1", "clean run").notes == "clean run"
    with pytest.raises(InvalidArgument):
        store.add_tags("run-1", [""])
    with pytest.raises(NotFound):
        store.set_notes("nope", "x")


def fill(store: TraceStore, make_trace: TraceFactory, count: int) -> None:
    for i in range(count):
        store.ingest(
            make_trace(
                f"run-{i:02d}",
                answer=f"answer {i}",
                created_at=f"2026-11-{1 + i % 5:02d}T10:00:00Z",  # ties on time: the id breaks them
                verdict="passed" if i % 2 else "failed",
                suite="shop" if i % 3 else "forms",
                model="Qwen/Qwen3-4B" if i < 10 else "agent-20261121-0001",
            )
        )


def test_pages_cover_every_match_once_newest_first(store: TraceStore, make_trace: TraceFactory) -> None:
    fill(store, make_trace, 23)
    seen: list[tuple[datetime, str]] = []
    token = ""
    pages = 0
    while True:
        page = store.list_traces(page_size=5, page_token=token)
        seen += [(s.trace.created_at, s.trace.id) for s in page.traces]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=True)


def test_filters(store: TraceStore, make_trace: TraceFactory) -> None:
    fill(store, make_trace, 12)
    store.add_tags("run-03", ["hard"])

    def ids(**filters: Any) -> set[str]:
        return {s.trace.id for s in store.list_traces(TraceQuery(**filters), page_size=100).traces}

    assert ids(status=CurationStatus.APPROVED) == {f"run-{i:02d}" for i in range(1, 12, 2)}
    assert ids(verdict="failed", suite="forms") == {"run-00", "run-06"}
    assert ids(model="agent-20261121-0001") == {"run-10", "run-11"}
    assert ids(task_id="first-product", tag="hard") == {"run-03"}
    window = ids(created_from=datetime(2026, 11, 2, tzinfo=UTC), created_before=datetime(2026, 11, 3, tzinfo=UTC))
    assert window == {"run-01", "run-06", "run-11"}
    assert store.count_by_status(TraceQuery(suite="forms")) == {
        CurationStatus.PENDING: 2,
        CurationStatus.APPROVED: 2,
        CurationStatus.REJECTED: 0,
    }


def test_a_bad_or_foreign_page_token_is_refused(store: TraceStore, make_trace: TraceFactory) -> None:
    fill(store, make_trace, 4)
    token = store.list_traces(page_size=2).next_page_token
    with pytest.raises(InvalidArgument, match="other filters"):
        store.list_traces(TraceQuery(suite="shop"), page_size=2, page_token=token)
    with pytest.raises(InvalidArgument, match="page_token"):
        store.list_traces(page_token="not-a-token!")
    with pytest.raises(InvalidArgument, match="page_size"):
        store.list_traces(page_size=0)


def test_builds(store: TraceStore, make_trace: TraceFactory) -> None:
    fill(store, make_trace, 6)
    approved = store.approved_revisions()
    assert list(approved) == ["run-01", "run-03", "run-05"]
    assert store.approved_since_last_build() == list(approved)
    record = store.record_build("ds-0001", list(approved), train_rows=3, path="/data/ds-0001")
    assert record.trace_revisions == {"run-01": 0, "run-03": 0, "run-05": 0}
    assert store.find_build(["run-05", "run-01", "run-03"]) == record
    assert store.find_build(["run-01"]) is None
    assert store.approved_since_last_build() == []

    store.set_status("run-00", CurationStatus.APPROVED)
    store.edit_message("run-01", 0, 4, "edited after the build")
    assert store.approved_since_last_build() == ["run-00", "run-01"]
    assert store.find_build(list(approved)) is None  # run-01 is at a new revision
    assert store.find_build(approved) == record  # the built revisions, given explicitly
    assert store.list_builds() == [record] and store.get_build("ds-0001") == record


def test_a_failed_build_record_leaves_nothing(store: TraceStore, make_trace: TraceFactory) -> None:
    fill(store, make_trace, 2)
    with pytest.raises(NotFound, match="'missing'"):
        store.record_build("ds-0001", ["run-01", "missing"])
    with pytest.raises(NotFound, match="revision 3"):
        store.record_build("ds-0001", {"run-01": 3})
    assert store.list_builds() == []
    store.record_build("ds-0001", ["run-01"])
    with pytest.raises(Conflict, match="already recorded"):
        store.record_build("ds-0001", ["run-00"])
    with pytest.raises(InvalidArgument):
        store.record_build("ds-0002", [])
    with pytest.raises(NotFound):
        store.get_build("ds-0002")


def test_the_file_reopens_with_its_schema(tmp_path: Path, make_trace: TraceFactory) -> None:
    path = tmp_path / "traces.db"
    with TraceStore(path, CurationSettings(approve_verified=False)) as first:
        assert first.ingest(make_trace()).status == CurationStatus.PENDING
    with TraceStore(path) as second:
        assert second.get("run-1").status == CurationStatus.PENDING
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(FailedPrecondition, match="newer than this service"):
        TraceStore(path)
