"""The trace store: traces, their curation state and revisions, and the record of builds.

A SQLite file (the embedded default) or a PostgreSQL database (`store_db`; one schema,
`store_schema`). Every method is one transaction: on any error nothing it started is left
written. Ingest is idempotent by trace id, so a redelivered event is a no-op, also when several
dataset replicas store the same trace at once (the insert yields to the first). Edits are
optimistic: they name the revision they were based on and a stale one is refused with Conflict;
the trace's row is locked while a change is checked and made. Revision 0 is the trace as
ingested and is kept forever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, cast

from tracewheel.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from tracewheel.core.trace import Trace
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES
from tracewheel.dataset.builds import BuildLog
from tracewheel.dataset.curation import (
    CurationSettings,
    CurationStatus,
    curate,
    duplicate_fingerprint,
    is_held_out,
)
from tracewheel.dataset.navigation import TraceNavigation
from tracewheel.dataset.records import IngestResult, RevisionInfo, StoredTrace
from tracewheel.dataset.store_db import Connection, Row, open_database
from tracewheel.dataset.store_edits import TraceEditing, now_iso, validated
from tracewheel.dataset.store_listing import TRACE_COLUMNS, TraceListing
from tracewheel.dataset.store_schema import from_iso, iso

logger = logging.getLogger(__name__)

MAX_TAG_LENGTH = 64


class TraceStore(BuildLog, TraceNavigation, TraceEditing, TraceListing):
    """Traces with curation state, revisions (edits: `TraceEditing`), tags, notes, builds (`BuildLog`),
    lists and counts (`TraceListing`), neighbours."""

    def __init__(
        self,
        path: str | Path,
        curation: CurationSettings | None = None,
        *,
        max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES,
    ) -> None:
        """Opens (or creates) the store: a SQLite file path, or a `postgresql://` URL (store_db);
        traces (ingested or edited) over `max_trace_bytes` are refused.

        Raises:
            FailedPrecondition: the schema there is newer than this code.
            Unavailable: the PostgreSQL server cannot be reached or refuses the connection.
        """
        self._db = open_database(path)
        self.path = self._db.location  # a URL without its password
        self.curation = curation or CurationSettings()
        self.max_trace_bytes = max_trace_bytes

    def close(self) -> None:
        self._db.close()

    def build_lock(self) -> AbstractContextManager[None]:
        """Held for a whole build: one build at a time among every process sharing this store."""
        return cast(AbstractContextManager[None], self._db.build_lock())

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE") -> Iterator[Connection]:
        with self._db.transaction(write=mode == "IMMEDIATE") as db:
            yield db

    # ingest and read

    def ingest(self, trace: Trace | Mapping[str, Any]) -> IngestResult:
        """Stores a new trace as revision 0 with the status the curation rules give it.

        Raises:
            TraceValidationError: the trace is malformed (each problem names the field and message index).
            TraceTooLarge: the trace is over the size limit.
        """
        trace = validated(trace, self.max_trace_bytes)
        with self._transaction() as db:
            if (stored := self._already_stored(db, trace.id)) is not None:
                return stored
            decision = curate(trace, self.curation, lambda fp: self._trace_with_fingerprint(db, fp))
            now = now_iso()
            columns = (*self._filter_columns(trace), decision.status, decision.reason)
            inserted = db.execute(
                "INSERT INTO traces (id, created_at, ingested_at, updated_at, model, suite, task_id, verdict,"
                " fingerprint, status, reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
                " ON CONFLICT (id) DO NOTHING",
                (trace.id, iso(trace.created_at), now, now, *columns),
            )
            if inserted.rowcount == 0:  # another replica stored it since the check above
                return self._already_stored(db, trace.id)  # type: ignore[return-value]
            db.execute("UPDATE status_counts SET n = n + 1 WHERE status = ?", (decision.status,))
            self._insert_revision(db, trace, 0, "ingest", now)
            self._insert_tags(db, trace.id, decision.tags)
        logger.info("stored trace %s as %s", trace.id, decision.status)
        return IngestResult(created=True, status=decision.status, reason=decision.reason, tags=decision.tags)

    def _already_stored(self, db: Connection, trace_id: str) -> IngestResult | None:
        row = db.execute("SELECT status, reason FROM traces WHERE id = ?", (trace_id,)).fetchone()
        if row is None:
            return None
        logger.info("trace %s already stored; ingest is a no-op", trace_id)
        tags = self._tags(db, [trace_id])[trace_id]
        return IngestResult(created=False, status=row["status"], reason=row["reason"], tags=tags)

    @staticmethod
    def _filter_columns(trace: Trace) -> tuple[str, str, str, str, str]:
        task = trace.task
        verdict = trace.outcome.verdict.value if trace.outcome else "unspecified"
        suite, task_id = (task.suite, task.task_id) if task else ("", "")
        return trace.model, suite, task_id, verdict, duplicate_fingerprint(trace)

    @staticmethod
    def _trace_with_fingerprint(db: Connection, fingerprint: str) -> str | None:
        row = db.execute("SELECT id FROM traces WHERE fingerprint = ? ORDER BY id LIMIT 1", (fingerprint,)).fetchone()
        return None if row is None else str(row["id"])

    @staticmethod
    def _insert_revision(db: Connection, trace: Trace, revision: int, summary: str, now: str) -> None:
        db.execute(
            "INSERT INTO revisions (trace_id, revision, created_at, summary, body) VALUES (?, ?, ?, ?, ?)",
            (trace.id, revision, now, summary, trace.model_dump_json()),
        )

    @staticmethod
    def _insert_tags(db: Connection, trace_id: str, tags: Iterable[str]) -> None:
        rows = [(trace_id, tag) for tag in tags]
        db.executemany("INSERT INTO tags (trace_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)

    @staticmethod
    def _tags(db: Connection, trace_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {trace_id: [] for trace_id in trace_ids}
        for start in range(0, len(trace_ids), 500):
            chunk = trace_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT trace_id, tag FROM tags WHERE trace_id IN ({marks}) ORDER BY tag", chunk)
            for row in rows:
                found[row["trace_id"]].append(row["tag"])
        return {trace_id: tuple(tags) for trace_id, tags in found.items()}

    def _stored(self, db: Connection, rows: list[Row]) -> list[StoredTrace]:
        tags = self._tags(db, [row["id"] for row in rows])
        return [
            StoredTrace(
                trace=Trace.model_validate_json(row["body"]),
                status=row["status"],
                reason=row["reason"],
                revision=row["shown"],
                latest_revision=row["latest"],
                tags=tags[row["id"]],
                notes=row["notes"],
                ingested_at=from_iso(row["ingested_at"]),
                updated_at=from_iso(row["updated_at"]),
            )
            for row in rows
        ]

    def _get(self, db: Connection, trace_id: str, revision: int | None = None) -> StoredTrace:
        row = db.execute(
            f"SELECT {TRACE_COLUMNS}, r.revision AS shown, r.body FROM traces t JOIN revisions r"
            " ON r.trace_id = t.id AND r.revision = COALESCE(?, t.revision) WHERE t.id = ?",
            (revision, trace_id),
        ).fetchone()
        if row is None:
            exists = db.execute("SELECT revision FROM traces WHERE id = ?", (trace_id,)).fetchone()
            if exists is None:
                raise NotFound(f"trace {trace_id!r} is not in the store")
            raise NotFound(f"trace {trace_id!r} has no revision {revision}; the latest is {exists['revision']}")
        return self._stored(db, [row])[0]

    def get(self, trace_id: str, revision: int | None = None) -> StoredTrace:
        """A stored trace at its current revision, or at `revision`.

        Raises:
            NotFound: no such trace or revision.
        """
        with self._transaction("DEFERRED") as db:
            return self._get(db, trace_id, revision)

    def revisions(self, trace_id: str) -> list[RevisionInfo]:
        """The revision history of a trace, oldest first.

        Raises:
            NotFound: no such trace.
        """
        with self._transaction("DEFERRED") as db:
            rows = db.execute(
                "SELECT revision, created_at, summary FROM revisions WHERE trace_id = ? ORDER BY revision", (trace_id,)
            ).fetchall()
        if not rows:
            raise NotFound(f"trace {trace_id!r} is not in the store")
        return [
            RevisionInfo(revision=r["revision"], created_at=from_iso(r["created_at"]), summary=r["summary"])
            for r in rows
        ]

    # curation state

    def _touch(self, db: Connection, trace_id: str, base_revision: int | None) -> int:
        row = db.execute("SELECT revision FROM traces WHERE id = ? FOR UPDATE", (trace_id,)).fetchone()
        if row is None:
            raise NotFound(f"trace {trace_id!r} is not in the store")
        if base_revision is not None and base_revision != row["revision"]:
            raise Conflict(
                f"trace {trace_id!r} is at revision {row['revision']}, not {base_revision};"
                " reload it and redo the change"
            )
        db.execute("UPDATE traces SET updated_at = ? WHERE id = ?", (now_iso(), trace_id))
        return int(row["revision"])

    def set_status(
        self, trace_id: str, status: CurationStatus, reason: str = "", base_revision: int | None = None
    ) -> StoredTrace:
        """Sets a trace's curation status (a person's decision overrides the rules').

        Raises:
            NotFound: no such trace.
            Conflict: base_revision is given and is not the current revision.
            InvalidArgument: a rejection without a reason.
            FailedPrecondition: an approval of a run of a held-out task.
        """
        status = CurationStatus(status)
        if status == CurationStatus.REJECTED and not reason.strip():
            raise InvalidArgument("reason: a rejection needs a reason (it is shown to the next curator)")
        with self._transaction() as db:
            if status == CurationStatus.APPROVED and is_held_out(self._get(db, trace_id).trace):
                raise FailedPrecondition(
                    f"trace {trace_id} is a run of a held-out task: held-out tasks never feed a build, "
                    "so it cannot be approved"
                )
            self._touch(db, trace_id, base_revision)
            before = db.execute("SELECT status FROM traces WHERE id = ?", (trace_id,)).fetchone()["status"]
            db.execute("UPDATE traces SET status = ?, reason = ? WHERE id = ?", (status, reason.strip(), trace_id))
            self._move_count(db, CurationStatus(before), status)
            logger.info("trace %s set to %s", trace_id, status)
            return self._get(db, trace_id)

    @staticmethod
    def _move_count(db: Connection, before: CurationStatus, after: CurationStatus) -> None:
        """One trace less in `before`'s count and one more in `after`'s."""
        if before == after:
            return
        # rows locked in one order by every writer, so two opposite moves cannot deadlock
        for status in sorted((before, after)):
            db.execute("UPDATE status_counts SET n = n + ? WHERE status = ?", (1 if status == after else -1, status))

    def add_tags(self, trace_id: str, tags: Iterable[str]) -> StoredTrace:
        """Adds tags (already present ones are kept once).

        Raises:
            NotFound: no such trace.
            InvalidArgument: a tag is empty or longer than MAX_TAG_LENGTH.
        """
        cleaned = [tag.strip() for tag in tags]
        bad = [tag for tag in cleaned if not tag or len(tag) > MAX_TAG_LENGTH]
        if bad:
            raise InvalidArgument(f"tags: each tag is 1 to {MAX_TAG_LENGTH} characters; got {bad!r}")
        with self._transaction() as db:
            self._touch(db, trace_id, None)
            self._insert_tags(db, trace_id, cleaned)
            return self._get(db, trace_id)

    def remove_tags(self, trace_id: str, tags: Iterable[str]) -> StoredTrace:
        """Removes tags; absent ones are ignored.

        Raises:
            NotFound: no such trace.
        """
        with self._transaction() as db:
            self._touch(db, trace_id, None)
            db.executemany("DELETE FROM tags WHERE trace_id = ? AND tag = ?", [(trace_id, t.strip()) for t in tags])
            return self._get(db, trace_id)

    def set_notes(self, trace_id: str, notes: str) -> StoredTrace:
        """Replaces the curator's notes on a trace.

        Raises:
            NotFound: no such trace.
        """
        with self._transaction() as db:
            self._touch(db, trace_id, None)
            db.execute("UPDATE traces SET notes = ? WHERE id = ?", (notes, trace_id))
            return self._get(db, trace_id)
