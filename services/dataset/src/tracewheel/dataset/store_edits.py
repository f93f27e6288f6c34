"""Edits of a stored trace as new revisions, part of the trace store (`TraceStore` mixes this in).

An edit names the revision it was based on; a stale one is refused with Conflict. Revision 0,
the trace as ingested, is kept forever; an edit that changes nothing stores no revision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

from tracewheel.core.errors import Conflict, InvalidArgument
from tracewheel.core.trace import Trace, validate_trace
from tracewheel.core.trace_size import check_trace_size
from tracewheel.dataset import edits
from tracewheel.dataset.records import StoredTrace
from tracewheel.dataset.store_db import Connection
from tracewheel.dataset.store_schema import iso

logger = logging.getLogger(__name__)


def now_iso() -> str:
    """The current time as the store writes it."""
    return iso(datetime.now(UTC))


def validated(trace: Trace | Mapping[str, Any], max_trace_bytes: int) -> Trace:
    """`trace` checked as ingest and edits check it.

    Raises:
        TraceValidationError: the trace is malformed.
        InvalidArgument: it is over `max_trace_bytes` (TraceTooLarge).
    """
    # A Trace built elsewhere (model_construct, mutated lists) is checked again like plain data.
    data = trace.model_dump(mode="json") if isinstance(trace, Trace) else dict(trace)
    result = validate_trace(data)
    check_trace_size(result, max_trace_bytes)  # the one size policy: core.trace_size
    return result


class TraceEditing:
    """Revision-making edits; needs the store's `_transaction`, `_get`, `get` and row writers."""

    max_trace_bytes: int

    def _transaction(self, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE") -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _get(self, db: Connection, trace_id: str, revision: int | None = None) -> StoredTrace:
        raise NotImplementedError

    def get(self, trace_id: str, revision: int | None = None) -> StoredTrace:
        raise NotImplementedError

    @staticmethod
    def _insert_revision(db: Connection, trace: Trace, revision: int, summary: str, now: str) -> None:
        raise NotImplementedError

    @staticmethod
    def _filter_columns(trace: Trace) -> tuple[str, str, str, str, str]:
        raise NotImplementedError

    def edit(
        self, trace_id: str, base_revision: int, new_trace: Trace | Mapping[str, Any], summary: str = "edit"
    ) -> StoredTrace:
        """Stores `new_trace` as the next revision; the curation status is kept.

        An edit that changes nothing stores no revision.

        Raises:
            TraceValidationError: the new trace is malformed (checked exactly like ingest).
            InvalidArgument: the new trace has another id, or is over the size limit (TraceTooLarge).
            NotFound: no such trace.
            Conflict: base_revision is not the current revision.
        """
        trace = validated(new_trace, self.max_trace_bytes)
        if trace.id != trace_id:
            raise InvalidArgument(f"id: an edit keeps the trace id {trace_id!r}, got {trace.id!r}")
        with self._transaction() as db:
            db.execute("SELECT id FROM traces WHERE id = ? FOR UPDATE", (trace_id,))  # one edit of it at a time
            current = self._get(db, trace_id)
            if base_revision != current.revision:
                raise Conflict(
                    f"trace {trace_id!r} is at revision {current.revision}, not {base_revision};"
                    " reload it and redo the edit"
                )
            if trace == current.trace:
                return current
            revision = current.revision + 1
            now = now_iso()
            self._insert_revision(db, trace, revision, summary, now)
            db.execute(
                "UPDATE traces SET revision = ?, updated_at = ?, created_at = ?, model = ?, suite = ?, task_id = ?,"
                " verdict = ?, fingerprint = ? WHERE id = ?",
                (revision, now, iso(trace.created_at), *self._filter_columns(trace), trace_id),
            )
            logger.info("trace %s: revision %d (%s)", trace_id, revision, summary)
            return self._get(db, trace_id)

    def edit_message(
        self,
        trace_id: str,
        base_revision: int,
        index: int,
        text: str | None,
        field: Literal["content", "reasoning_content"] = "content",
    ) -> StoredTrace:
        """Replaces one message's content (or reasoning) in a new revision.

        Raises:
            InvalidArgument, TraceValidationError, NotFound, Conflict: as `edits.replace_message_text` and `edit`.
        """
        base = self.get(trace_id, base_revision).trace
        edited = edits.replace_message_text(base, index, text, field)
        return self.edit(trace_id, base_revision, edited, summary=f"edit messages[{index}].{field}")

    def delete_turn(self, trace_id: str, base_revision: int, index: int) -> StoredTrace:
        """Deletes the turn at `index` in a new revision (what goes with it: `edits` module docstring).

        Raises:
            InvalidArgument, FailedPrecondition, TraceValidationError, NotFound, Conflict:
                as `edits.delete_turn` and `edit`.
        """
        base = self.get(trace_id, base_revision).trace
        removed = edits.turn_indices(base, index)
        edited = edits.delete_turn(base, index)
        return self.edit(trace_id, base_revision, edited, summary=f"delete messages{removed}")

    def strip_guidance(self, trace_id: str, base_revision: int) -> StoredTrace:
        """Removes the guidance system prompt in a new revision.

        Raises:
            FailedPrecondition, TraceValidationError, NotFound, Conflict: as `edits.strip_guidance` and `edit`.
        """
        base = self.get(trace_id, base_revision).trace
        return self.edit(trace_id, base_revision, edits.strip_guidance(base), summary="strip guidance prompt")
