"""Previous / next trace in a filtered list, part of the trace store (`TraceStore` mixes this in).

The curation UI walks a filtered list one trace at a time. The neighbours are found by the
list's own order (`created_at` DESC, `id` DESC) from the trace's position, so they are right
even when the trace itself no longer matches the filters (it was just approved).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal

from tracewheel.core.errors import NotFound
from tracewheel.dataset.records import TraceQuery
from tracewheel.dataset.store_db import Connection
from tracewheel.dataset.store_schema import where_clauses


class TraceNavigation:
    """Neighbour lookups over the store's connection; needs the store's `_transaction`."""

    def _transaction(self, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE") -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def neighbours(self, trace_id: str, query: TraceQuery | None = None) -> tuple[str | None, str | None]:
        """The ids of the traces before and after `trace_id` in the list `query` gives.

        Raises:
            NotFound: no such trace.
        """
        clauses, params = where_clauses(query or TraceQuery())
        with self._transaction("DEFERRED") as db:
            row = db.execute("SELECT created_at FROM traces WHERE id = ?", (trace_id,)).fetchone()
            if row is None:
                raise NotFound(f"trace {trace_id!r} is not in the store")
            position = [row["created_at"], row["created_at"], trace_id]
            before = self._first(
                db, [*clauses, "(t.created_at > ? OR (t.created_at = ? AND t.id > ?))"], [*params, *position], "ASC"
            )
            after = self._first(
                db, [*clauses, "(t.created_at < ? OR (t.created_at = ? AND t.id < ?))"], [*params, *position], "DESC"
            )
        return before, after

    @staticmethod
    def _first(db: Connection, clauses: list[str], params: list[object], order: str) -> str | None:
        sql = (
            f"SELECT t.id FROM traces t WHERE {' AND '.join(clauses)}"
            f" ORDER BY t.created_at {order}, t.id {order} LIMIT 1"
        )
        found = db.execute(sql, params).fetchone()
        return None if found is None else str(found["id"])
