"""The record of dataset builds, part of the trace store (`TraceStore` mixes this in).

A build records the exact (trace id, revision) pairs it used. Its identity is
`selection_sha256` of those pairs, so "was this exact set already built?" is one lookup, and
editing a built trace makes the next selection differ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Literal

from tracewheel.core.errors import Conflict, InvalidArgument, NotFound
from tracewheel.core.trace import Trace
from tracewheel.dataset.records import BuildRecord
from tracewheel.dataset.store_db import Connection, Row
from tracewheel.dataset.store_schema import from_iso, iso, selection_sha256

logger = logging.getLogger(__name__)

TraceSelection = Sequence[str] | Mapping[str, int]
"""Trace ids (at their current revisions) or an explicit {trace id: revision}."""


class BuildLog:
    """Build bookkeeping over the store's connection; needs the store's `_transaction`."""

    def _transaction(self, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE") -> AbstractContextManager[Connection]:
        raise NotImplementedError

    @staticmethod
    def _by_id(db: Connection, select: str, column: str, ids: Sequence[str]) -> Iterator[Row]:
        """The rows of `select` whose `column` is one of `ids`, 500 ids a query."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            yield from db.execute(f"{select} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)

    @staticmethod
    def _resolve(db: Connection, selection: TraceSelection) -> dict[str, int]:
        if isinstance(selection, Mapping):
            revisions = dict(selection)
            pairs = BuildLog._by_id(db, "SELECT trace_id, revision FROM revisions", "trace_id", list(revisions))
            stored = {(row["trace_id"], int(row["revision"])) for row in pairs}
            for trace_id, revision in revisions.items():
                if (trace_id, revision) not in stored:
                    raise NotFound(f"trace {trace_id!r} revision {revision} is not in the store")
            return revisions
        ids = list(selection)
        rows = BuildLog._by_id(db, "SELECT id, revision FROM traces", "id", ids)
        current = {row["id"]: int(row["revision"]) for row in rows}
        if missing := [trace_id for trace_id in ids if trace_id not in current]:
            raise NotFound(f"trace {missing[0]!r} is not in the store")
        return {trace_id: current[trace_id] for trace_id in ids}

    @staticmethod
    def _record(db: Connection, row: Row, *, with_traces: bool = True) -> BuildRecord:
        pairs: Iterable[Row] = (
            db.execute("SELECT trace_id, revision FROM build_traces WHERE build_seq = ?", (row["seq"],))
            if with_traces
            else []
        )
        return BuildRecord(
            version=row["version"],
            selection_sha256=row["selection_sha256"],
            trace_revisions={pair["trace_id"]: pair["revision"] for pair in pairs},
            built_at=from_iso(row["built_at"]),
            path=row["path"],
            base_model=row["base_model"],
            template_sha256=row["template_sha256"],
            train_rows=row["train_rows"],
            eval_rows=row["eval_rows"],
            supervised_tokens=row["supervised_tokens"],
        )

    def approved_revisions(self) -> dict[str, int]:
        """Every approved trace with its current revision: what a full build would use."""
        with self._transaction("DEFERRED") as db:
            rows = db.execute("SELECT id, revision FROM traces WHERE status = 'approved' ORDER BY id").fetchall()
        return {row["id"]: int(row["revision"]) for row in rows}

    def traces_at(self, revisions: Mapping[str, int]) -> list[Trace]:
        """The traces at the given revisions, in that order, read 500 at a time (what a build reads).

        Raises:
            NotFound: a trace or revision is not in the store.
        """
        bodies: dict[str, str] = {}
        ids = list(revisions)
        with self._transaction("DEFERRED") as db:
            for row in self._by_id(db, "SELECT trace_id, revision, body FROM revisions", "trace_id", ids):
                if revisions[row["trace_id"]] == row["revision"]:
                    bodies[row["trace_id"]] = row["body"]
        if missing := [trace_id for trace_id in ids if trace_id not in bodies]:
            raise NotFound(f"trace {missing[0]!r} revision {revisions[missing[0]]} is not in the store")
        return [Trace.model_validate_json(bodies[trace_id]) for trace_id in ids]

    def approved_since_last_build(self) -> list[str]:
        """Approved traces whose current revision the last build did not use (all of them before any build)."""
        with self._transaction("DEFERRED") as db:
            rows = db.execute(
                "SELECT t.id FROM traces t WHERE t.status = 'approved' AND NOT EXISTS ("
                " SELECT 1 FROM build_traces b WHERE b.build_seq = (SELECT MAX(seq) FROM builds)"
                " AND b.trace_id = t.id AND b.revision = t.revision) ORDER BY t.id"
            ).fetchall()
        return [row["id"] for row in rows]

    def record_build(
        self,
        version: str,
        trace_ids: TraceSelection,
        *,
        path: str = "",
        base_model: str = "",
        template_sha256: str = "",
        train_rows: int = 0,
        eval_rows: int = 0,
        supervised_tokens: int = 0,
        built_at: datetime | None = None,
    ) -> BuildRecord:
        """Records a finished build and the trace revisions it used.

        Raises:
            InvalidArgument: no version or no traces.
            NotFound: a trace (or the given revision of it) is not stored.
            Conflict: a build with this version is already recorded.
        """
        if not version or not trace_ids:
            raise InvalidArgument("record_build: a build needs a version and at least one trace")
        with self._transaction() as db:
            revisions = self._resolve(db, trace_ids)
            if db.execute("SELECT 1 FROM builds WHERE version = ?", (version,)).fetchone() is not None:
                raise Conflict(f"build {version!r} is already recorded; builds are immutable, use a new version")
            inserted = db.execute(
                "INSERT INTO builds (version, selection_sha256, built_at, path, base_model, template_sha256,"
                " train_rows, eval_rows, supervised_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (
                    version,
                    selection_sha256(revisions),
                    iso(built_at or datetime.now(UTC)),
                    path,
                    base_model,
                    template_sha256,
                    train_rows,
                    eval_rows,
                    supervised_tokens,
                ),
            )
            seq = inserted.fetchall()[0]["seq"]
            db.executemany(
                "INSERT INTO build_traces (build_seq, trace_id, revision) VALUES (?, ?, ?)",
                [(seq, trace_id, revision) for trace_id, revision in revisions.items()],
            )
            record = self._record(db, db.execute("SELECT * FROM builds WHERE seq = ?", (seq,)).fetchone())
        logger.info("recorded build %s of %d traces", version, len(revisions))
        return record

    def find_build(self, trace_ids: TraceSelection) -> BuildRecord | None:
        """The latest build of exactly this selection (ids at their current revisions), if any.

        Raises:
            NotFound: a trace (or the given revision of it) is not stored.
        """
        with self._transaction("DEFERRED") as db:
            digest = selection_sha256(self._resolve(db, trace_ids))
            row = db.execute(
                "SELECT * FROM builds WHERE selection_sha256 = ? ORDER BY seq DESC LIMIT 1", (digest,)
            ).fetchone()
            return None if row is None else self._record(db, row)

    def list_builds(self, *, with_traces: bool = True) -> list[BuildRecord]:
        """Every recorded build, newest first; `with_traces=False` leaves each record's
        `trace_revisions` empty (one query, for listings polled often, such as the console's)."""
        with self._transaction("DEFERRED") as db:
            rows = db.execute("SELECT * FROM builds ORDER BY seq DESC").fetchall()
            return [self._record(db, row, with_traces=with_traces) for row in rows]

    def get_build(self, version: str) -> BuildRecord:
        """One build by version.

        Raises:
            NotFound: no build with this version.
        """
        with self._transaction("DEFERRED") as db:
            row = db.execute("SELECT * FROM builds WHERE version = ?", (version,)).fetchone()
            if row is None:
                raise NotFound(f"build {version!r} is not recorded")
            return self._record(db, row)
