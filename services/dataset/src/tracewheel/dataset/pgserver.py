"""A throwaway PostgreSQL server (initdb + pg_ctl) for tests and benchmarks of the PostgreSQL store.

The binaries are the Debian package's (`postgresql`, scripts/system-deps.sh): on the PATH, or in
/usr/lib/postgresql/<version>/bin. The cluster lives in a temporary folder, listens on
127.0.0.1 at a free port with trust authentication, and is removed on `stop()`. PostgreSQL
refuses to run as root, so as root it runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.natsserver import free_port

SUPERUSER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest installed version), or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


class PostgresServer:
    """One cluster in a temporary folder; `url(database)` connects to it."""

    def __init__(self, bin_dir: Path | None = None, port: int = 0) -> None:
        """Raises:
        FailedPrecondition: no PostgreSQL binaries, or root without a `postgres` user.
        """
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise FailedPrecondition("no PostgreSQL binaries (initdb, pg_ctl): install the Debian package postgresql")
        self.bin_dir = found
        self.port = port or free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None or subprocess.run(["id", SUPERUSER], capture_output=True).returncode:
                raise FailedPrecondition(f"PostgreSQL does not run as root and there is no {SUPERUSER!r} user")
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="tracewheel-pg-"))
        self.data_dir = self.root / "data"

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as_user, *command], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise FailedPrecondition(f"{Path(command[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")

    def start(self) -> PostgresServer:
        """initdb, then pg_ctl start (waits until it accepts connections).

        Raises:
            FailedPrecondition: initdb or the server failed (the message quotes it).
        """
        if self._as_user:
            shutil.chown(self.root, user=SUPERUSER)
        initdb, pg_ctl = str(self.bin_dir / "initdb"), str(self.bin_dir / "pg_ctl")
        self._run(initdb, "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        log = str(self.root / "server.log")
        self._run(pg_ctl, "-D", str(self.data_dir), "-l", log, "-o", options, "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stops the server (fast shutdown) and removes its folder."""
        if self.data_dir.exists():
            subprocess.run(
                [*self._as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A new empty database on the server of `server_url` (which may create databases); its URL."""
    import psycopg

    name = f"tw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    """Drops the database of `url` (connections to it are ended), through the server's postgres database."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {parts.path.lstrip('/')} WITH (FORCE)")
