"""What the trace store returns and accepts: stored traces, list queries, pages, builds."""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.trace import Trace, Verdict
from tracewheel.dataset.curation import CurationStatus


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoredTrace(_Record):
    """A trace with its curation state. `trace` is revision `revision`, the latest unless asked."""

    trace: Trace
    status: CurationStatus
    reason: str = ""
    revision: int
    latest_revision: int
    tags: tuple[str, ...] = ()
    notes: str = ""
    ingested_at: datetime
    updated_at: datetime


class TraceSummary(_Record):
    """What a list page shows of a trace, read from the store's columns without its messages."""

    id: str
    created_at: datetime
    model: str
    suite: str = ""
    task_id: str = ""
    verdict: str = "unspecified"
    status: CurationStatus
    reason: str = ""
    revision: int
    """The latest revision."""
    tags: tuple[str, ...] = ()
    updated_at: datetime


class SummaryPage(_Record):
    """One page of summaries, newest first; `next_page_token` is empty on the last page."""

    traces: list[TraceSummary]
    next_page_token: str = ""


class IngestResult(_Record):
    created: bool
    """False: the id was already stored and nothing changed (a redelivery)."""
    status: CurationStatus
    reason: str = ""
    tags: tuple[str, ...] = ()


class RevisionInfo(_Record):
    revision: int
    created_at: datetime
    summary: str


class TraceQuery(_Record):
    """Filters of a trace list; every field left at its default matches everything."""

    status: CurationStatus | None = None
    suite: str | None = None
    task_id: str | None = None
    model: str | None = None
    verdict: Verdict | None = None
    tag: str | None = None
    created_from: datetime | None = None
    """Inclusive lower bound on the trace's `created_at`."""
    created_before: datetime | None = None
    """Exclusive upper bound on the trace's `created_at`."""

    def key(self) -> str:
        """A short hash of the filters, so a page token is only used with the query it came from."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class TracePage(_Record):
    """One page of a list, newest first; `next_page_token` is empty on the last page."""

    traces: list[StoredTrace]
    next_page_token: str = ""


class BuildRecord(_Record):
    """A dataset build: the exact trace revisions it used and what it produced."""

    version: str
    selection_sha256: str
    trace_revisions: dict[str, int]
    built_at: datetime
    path: str = ""
    base_model: str = ""
    template_sha256: str = ""
    train_rows: int = Field(default=0, ge=0)
    eval_rows: int = Field(default=0, ge=0)
    supervised_tokens: int = Field(default=0, ge=0)
