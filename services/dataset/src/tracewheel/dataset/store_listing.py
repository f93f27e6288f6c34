"""Lists of stored traces and their counts, part of the trace store (`TraceStore` mixes this in).

A list is newest first (`created_at` DESC, `id` DESC) and pages by keyset: a page token holds
the last row's sort key, and the next page starts below it with a row-value comparison that the
indexes seek to (each filter column leads an index ending in the sort key, store_schema), so a
later page costs what the first does. `list_traces` gives whole traces (the REST and gRPC
lists); `list_summaries` gives what a list page shows, from the `traces` columns alone, without
reading or parsing a trace's JSON. The counts without filters are the kept `status_counts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Literal

from tracewheel.core.errors import InvalidArgument
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import StoredTrace, SummaryPage, TracePage, TraceQuery, TraceSummary
from tracewheel.dataset.store_db import Connection, Row
from tracewheel.dataset.store_schema import decode_page_token, encode_page_token, from_iso, where_clauses

MAX_PAGE_SIZE = 500
TRACE_COLUMNS = "t.id, t.status, t.reason, t.notes, t.revision AS latest, t.ingested_at, t.updated_at, t.created_at"
_SUMMARY_COLUMNS = "t.model, t.suite, t.task_id, t.verdict"


class TraceListing:
    """Pages and counts over the store's connection; needs the store's `_transaction`, `_stored`, `_tags`."""

    def _transaction(self, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE") -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _stored(self, db: Connection, rows: list[Row]) -> list[StoredTrace]:
        raise NotImplementedError

    @staticmethod
    def _tags(db: Connection, trace_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    @staticmethod
    def _page(db: Connection, select: str, query: TraceQuery, page_size: int, page_token: str) -> tuple[list[Row], str]:
        """One page of `select` (over `traces t`) under the query's filters, and the next page's token.

        Raises:
            InvalidArgument: page_size is outside 1..MAX_PAGE_SIZE, or page_token is not from this query.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size: must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        clauses, params = where_clauses(query)
        if page_token:
            created_at, last_id = decode_page_token(page_token, query.key())
            clauses.append("(t.created_at, t.id) < (?, ?)")  # a row value: an index seek, not a scan
            params += [created_at, last_id]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{select} {where} ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
        rows = db.execute(sql, [*params, page_size + 1]).fetchall()
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = encode_page_token(last["created_at"], last["id"], query.key())
        return rows[:page_size], token

    def list_traces(self, query: TraceQuery | None = None, page_size: int = 50, page_token: str = "") -> TracePage:
        """One page of the traces matching `query`, newest first (keyset pagination).

        Raises:
            InvalidArgument: page_size is outside 1..MAX_PAGE_SIZE, or page_token is not from this query.
        """
        query = query or TraceQuery()
        select = (
            f"SELECT {TRACE_COLUMNS}, r.revision AS shown, r.body FROM traces t JOIN revisions r"
            " ON r.trace_id = t.id AND r.revision = t.revision"
        )
        with self._transaction("DEFERRED") as db:
            rows, token = self._page(db, select, query, page_size, page_token)
            stored = self._stored(db, rows)
        return TracePage(traces=stored, next_page_token=token)

    def list_summaries(self, query: TraceQuery | None = None, page_size: int = 50, page_token: str = "") -> SummaryPage:
        """One page of what a list shows of the traces matching `query`, newest first; the
        same traces and page tokens as `list_traces`, without their messages.

        Raises:
            InvalidArgument: page_size is outside 1..MAX_PAGE_SIZE, or page_token is not from this query.
        """
        query = query or TraceQuery()
        with self._transaction("DEFERRED") as db:
            rows, token = self._page(
                db, f"SELECT {TRACE_COLUMNS}, {_SUMMARY_COLUMNS} FROM traces t", query, page_size, page_token
            )
            tags = self._tags(db, [row["id"] for row in rows])
        summaries = [
            TraceSummary(
                id=row["id"],
                created_at=from_iso(row["created_at"]),
                model=row["model"],
                suite=row["suite"],
                task_id=row["task_id"],
                verdict=row["verdict"],
                status=row["status"],
                reason=row["reason"],
                revision=row["latest"],
                tags=tags[row["id"]],
                updated_at=from_iso(row["updated_at"]),
            )
            for row in rows
        ]
        return SummaryPage(traces=summaries, next_page_token=token)

    def count_by_status(self, query: TraceQuery | None = None) -> dict[CurationStatus, int]:
        """How many traces match `query`, per curation status (the status filter is ignored)."""
        clauses, params = where_clauses((query or TraceQuery()).model_copy(update={"status": None}))
        if clauses:
            sql = f"SELECT t.status, COUNT(*) AS n FROM traces t WHERE {' AND '.join(clauses)} GROUP BY t.status"
        else:  # every trace: the kept counts, not a scan
            sql = "SELECT status, n FROM status_counts"
        counts = dict.fromkeys(CurationStatus, 0)
        with self._transaction("DEFERRED") as db:
            for row in db.execute(sql, params):
                counts[CurationStatus(row["status"])] = row["n"]
        return counts
