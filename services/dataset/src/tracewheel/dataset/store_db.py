"""Where the trace store lives: a SQLite file (the embedded default) or a PostgreSQL database.

One schema (`store_schema`) and one SQL text for both: the store writes SQLite's `?`
placeholders and takes row locks with `... FOR UPDATE`; each database adapts the text
(PostgreSQL: `%s` placeholders; SQLite drops the lock clause, since its write transactions are
serialized by `BEGIN IMMEDIATE` already). A transaction is a `with database.transaction(write)`
block: committed at its end, rolled back on any error, and a unique-key clash inside it (two
writers at once) is a `Conflict`. `open_database` picks the kind from the location: a
`postgresql://` URL or a file path.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from tracewheel.core.errors import Conflict
from tracewheel.dataset.store_schema import connect

Row = Mapping[str, Any]
"""A result row: columns by name (sqlite3.Row, or psycopg's dict rows)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store's methods run their SQL on, inside one transaction."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class StoreDatabase(Protocol):
    """A store's database: transactions and closing."""

    dialect: str
    location: str  # what to show people: a path, or a URL without its password

    def transaction(self, write: bool) -> Any:  # a context manager yielding a Connection
        ...

    def build_lock(self) -> Any:  # a context manager held for a whole build, across processes
        ...

    def close(self) -> None: ...


class _SqliteConnection:
    dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._raw.execute(sql.replace(" FOR UPDATE", ""), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(sql.replace(" FOR UPDATE", ""), rows)


class SqliteDatabase:
    """One SQLite file in WAL mode, one connection shared by the store's threads under a lock."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        """Raises:
        FailedPrecondition: the file's schema is newer than this code.
        """
        self.location = path
        self._db = connect(path)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                yield _SqliteConnection(self._db)
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._rollback()
                if "UNIQUE" in str(exc):
                    raise Conflict(f"another writer stored the same key first ({exc}); retry") from None
                raise
            except BaseException:
                self._rollback()  # also when COMMIT itself failed (busy, disk full)
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """One build at a time among the processes sharing this file (an exclusive flock on a
        `.build-lock` file beside it), so two of them never build the same selection twice."""
        with open(f"{self.location}.build-lock", "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def is_database_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_database(location: str | Path) -> StoreDatabase:
    """The database at `location`: a PostgreSQL URL, or a SQLite file path (created if missing).

    Raises:
        FailedPrecondition: the schema there is newer than this code.
        Unavailable: the PostgreSQL server cannot be reached or refuses the connection.
    """
    if is_database_url(location):
        from tracewheel.dataset.store_postgres import PostgresDatabase

        return PostgresDatabase(str(location))
    return SqliteDatabase(str(Path(location)))
