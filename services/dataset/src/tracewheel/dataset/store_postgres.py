"""The trace store on PostgreSQL (psycopg 3): the production store, which several dataset replicas share.

Selected by a `postgresql://` URL (`TW_DATASET_DATABASE_URL`). The schema is `store_schema`'s,
rendered for PostgreSQL and applied under an advisory lock, so replicas starting together
migrate it once; its version lives in the table `tracewheel_schema`. One connection per store,
shared by its threads under a lock (as the SQLite one), in autocommit mode with explicit
transactions; a connection the server dropped is opened again at the next transaction. Writers
in other replicas are met by the SQL itself: ingest inserts with `ON CONFLICT (id) DO NOTHING`,
changes lock the trace's row (`FOR UPDATE`), and a unique key taken by another writer in the
meantime (a build version) is a `Conflict`, and builds take turns under an advisory lock (one
replica builds, the next finds that selection built). A server that cannot be reached is `Unavailable`,
within `CONNECT_TIMEOUT_S`: at start-up that stops the service with the reason, not a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tracewheel.core.errors import Conflict, FailedPrecondition, Unavailable
from tracewheel.dataset.store_db import Connection, Cursor
from tracewheel.dataset.store_schema import SCHEMA_VERSION, migration_statements

CONNECT_TIMEOUT_S = 10
_MIGRATION_LOCK = 7_100_523  # pg_advisory_xact_lock key: one replica migrates at a time
_BUILD_LOCK = 7_100_524  # pg_advisory_lock key: one replica builds at a time


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _PostgresConnection:
    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._raw.execute(sql.replace("?", "%s"), params)  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)


class PostgresDatabase:
    """A PostgreSQL database holding the store's schema."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        """Connects and brings the schema up to date.

        Raises:
            Unavailable: the server cannot be reached or refuses the connection.
            FailedPrecondition: the database's schema is newer than this code.
        """
        self.url = url
        self.location = redacted(url)
        self._lock = threading.Lock()
        self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise Unavailable(
                f"cannot reach the trace database at {self.location}: {reason}; is PostgreSQL running, and is "
                "TW_DATASET_DATABASE_URL right?"
            ) from None

    def _migrate(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._conn.execute("CREATE TABLE IF NOT EXISTS tracewheel_schema (version INTEGER NOT NULL)")
            row = self._conn.execute("SELECT version FROM tracewheel_schema").fetchone()
            version = 0 if row is None else int(row["version"])
            if version > SCHEMA_VERSION:
                raise FailedPrecondition(
                    f"{self.location}: schema version {version} is newer than this service's {SCHEMA_VERSION}; "
                    "upgrade the service"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in migration_statements(target, "postgresql"):
                    self._conn.execute(statement)
            if row is None:
                self._conn.execute("INSERT INTO tracewheel_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                self._conn.execute("UPDATE tracewheel_schema SET version = %s", (SCHEMA_VERSION,))

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        """One transaction (`write` changes nothing here: PostgreSQL locks rows as they are written).

        Raises:
            Conflict: another writer took a unique key first.
            Unavailable: the connection to the server failed.
        """
        import psycopg

        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            try:
                with self._conn.transaction():
                    yield _PostgresConnection(self._conn)
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"another writer stored the same key first ({exc.diag.message_detail}); retry") from None
            except psycopg.OperationalError as exc:
                raise Unavailable(f"the trace database at {self.location} failed: {exc}") from None

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """One build at a time among every replica on this database: a session advisory lock on a
        connection of its own (the shared one runs transactions meanwhile), released at the end or
        by the server if this replica dies mid-build.

        Raises:
            Unavailable: the server cannot be reached.
        """
        conn = self._connect()
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (_BUILD_LOCK,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_BUILD_LOCK,))
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
