"""The trace store's schema, its version, and the small codecs the store shares.

One schema for SQLite (one file, WAL mode) and PostgreSQL (`migration_statements` renders it
for either; store_postgres.py). `traces` holds one row per trace: its curation state and the columns
lists filter on, copied from the current revision. `revisions` holds every version of the
trace as JSON (revision 0 is what was ingested and is never changed). A build records the
exact (trace id, revision) pairs it used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tracewheel.core.errors import FailedPrecondition, InvalidArgument
from tracewheel.dataset.records import TraceQuery

SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS traces (
    id                TEXT PRIMARY KEY,
    created_at        TEXT NOT NULL,   -- the trace's own time, UTC, fixed-width ISO (sorts as text)
    ingested_at       TEXT NOT NULL,
    updated_at        TEXT NOT NULL,   -- last change of status, tags, notes or revision
    model             TEXT NOT NULL,
    suite             TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    verdict           TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,   -- curation.duplicate_fingerprint of the current revision
    status            TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    reason            TEXT NOT NULL DEFAULT '',
    notes             TEXT NOT NULL DEFAULT '',
    revision          INTEGER NOT NULL  -- the current (latest) revision
);
CREATE INDEX IF NOT EXISTS traces_by_time ON traces (created_at, id);
CREATE INDEX IF NOT EXISTS traces_by_status ON traces (status, created_at, id);
CREATE INDEX IF NOT EXISTS traces_by_fingerprint ON traces (fingerprint);

CREATE TABLE IF NOT EXISTS revisions (
    trace_id   TEXT NOT NULL REFERENCES traces (id),
    revision   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    summary    TEXT NOT NULL,           -- "ingest", "edit messages[3].content", ...
    body       TEXT NOT NULL,           -- Trace.model_dump_json()
    PRIMARY KEY (trace_id, revision)
);

CREATE TABLE IF NOT EXISTS tags (
    trace_id TEXT NOT NULL REFERENCES traces (id),
    tag      TEXT NOT NULL,
    PRIMARY KEY (trace_id, tag)
);
CREATE INDEX IF NOT EXISTS tags_by_tag ON tags (tag, trace_id);

CREATE TABLE IF NOT EXISTS builds (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    version           TEXT NOT NULL UNIQUE,
    selection_sha256  TEXT NOT NULL,    -- selection_sha256() of the (id, revision) pairs
    built_at          TEXT NOT NULL,
    path              TEXT NOT NULL,
    base_model        TEXT NOT NULL,
    template_sha256   TEXT NOT NULL,
    train_rows        INTEGER NOT NULL,
    eval_rows         INTEGER NOT NULL,
    supervised_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS builds_by_selection ON builds (selection_sha256);

CREATE TABLE IF NOT EXISTS build_traces (
    build_seq INTEGER NOT NULL REFERENCES builds (seq),
    trace_id  TEXT NOT NULL REFERENCES traces (id),
    revision  INTEGER NOT NULL,
    PRIMARY KEY (build_seq, trace_id)
);
"""

# Lists filter on one column and sort newest first: each filter column leads an index that goes
# on with the sort key, so a page is read in index order and stops after it, and ends with the
# status, so the counts per status under that filter are read from the index alone.
# `status_counts` holds the traces per status (the store changes it with every status it
# writes), so the unfiltered counts are three rows, not a scan of every trace.
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS traces_by_suite ON traces (suite, created_at, id, status);
CREATE INDEX IF NOT EXISTS traces_by_task ON traces (task_id, created_at, id, status);
CREATE INDEX IF NOT EXISTS traces_by_model ON traces (model, created_at, id, status);
CREATE INDEX IF NOT EXISTS traces_by_verdict ON traces (verdict, created_at, id, status);
CREATE TABLE IF NOT EXISTS status_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
);
INSERT INTO status_counts (status, n) SELECT 'pending', COUNT(*) FROM traces WHERE status = 'pending';
INSERT INTO status_counts (status, n) SELECT 'approved', COUNT(*) FROM traces WHERE status = 'approved';
INSERT INTO status_counts (status, n) SELECT 'rejected', COUNT(*) FROM traces WHERE status = 'rejected'
"""

# version -> DDL that brings the previous version to it; append, never edit. Statements are
# split on ";", so comments in the DDL must not contain one.
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


def migration_statements(version: int, dialect: str = "sqlite") -> list[str]:
    """The statements that bring a store at `version - 1` to `version`, for "sqlite" or "postgresql".

    PostgreSQL gets an identity column for SQLite's AUTOINCREMENT, and text compared byte by byte
    (collation "C", as SQLite does), so lists sort and page the same on both.
    """
    ddl = _MIGRATIONS[version]
    if dialect == "postgresql":
        ddl = ddl.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        ddl = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', ddl)
    return [statement for statement in ddl.split(";") if statement.strip()]


def connect(path: str) -> sqlite3.Connection:
    """Opens the store file (creating it) in WAL mode with the schema up to date.

    Raises:
        FailedPrecondition: the file was written by a newer version of this service.
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FailedPrecondition(
                f"{path}: schema version {version} is newer than this service's {SCHEMA_VERSION}; upgrade the service"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in migration_statements(target):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={target}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
        raise
    return db


def iso(moment: datetime) -> str:
    """A UTC time as fixed-width ISO text, so text order is time order (naive reads as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def selection_sha256(revisions: Mapping[str, int]) -> str:
    """The identity of a build's input: sha256 over the sorted `id@revision` lines.

    The revision is part of it so that editing a built trace makes the next build differ.
    """
    lines = "".join(f"{trace_id}@{revision}\n" for trace_id, revision in sorted(revisions.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def encode_page_token(created_at: str, trace_id: str, query_key: str) -> str:
    """An opaque keyset position: the last row's sort key and the query it belongs to."""
    raw = json.dumps([created_at, trace_id, query_key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query_key: str) -> tuple[str, str]:
    """The (created_at, id) position a token holds.

    Raises:
        InvalidArgument: the token is not one this store issued, or was issued for other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, trace_id, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidArgument("page_token: not a token from a previous page; list again without one") from None
    if key != query_key or not isinstance(created_at, str) or not isinstance(trace_id, str):
        raise InvalidArgument("page_token: it belongs to a list with other filters; list again without one")
    return created_at, trace_id


def where_clauses(query: TraceQuery) -> tuple[list[str], list[Any]]:
    """SQL conditions (over `traces t`) and their parameters for a list query."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("status", "suite", "task_id", "model", "verdict"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"t.{column} = ?")
            params.append(str(value))
    if query.tag is not None:
        clauses.append("EXISTS (SELECT 1 FROM tags g WHERE g.trace_id = t.id AND g.tag = ?)")
        params.append(query.tag)
    if query.created_from is not None:
        clauses.append("t.created_at >= ?")
        params.append(iso(query.created_from))
    if query.created_before is not None:
        clauses.append("t.created_at < ?")
        params.append(iso(query.created_before))
    return clauses, params
