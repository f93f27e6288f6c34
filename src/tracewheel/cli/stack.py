"""The local stack: nats-server plus every service as a child process.

`Supervisor` starts NATS, then the services in order, waits on their gRPC health, streams
their output with a `[name]` prefix, and on stop sends SIGTERM to each child's process group
(then SIGKILL after a grace period) so no process, grandchildren included, is left behind.
The stack's addresses are written to `<home>/stack.json` for `tracewheel status`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from tracewheel.core.errors import Unavailable
from tracewheel.core.files import write_json_atomically
from tracewheel.core.health import wait_healthy
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.settings import DEFAULT_HOME, HOME_VARIABLE


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # as in logs and status
    module: str  # python -m <module>
    env_prefix: str
    grpc_port: int
    http_port: int | None = None


SERVICES = (
    ServiceSpec("inference", "tracewheel.inference", "TW_INFERENCE_", 50051, 8000),
    ServiceSpec("mcp-gateway", "tracewheel.gateway", "TW_GATEWAY_", 50052, 8100),
    ServiceSpec("dataset", "tracewheel.dataset", "TW_DATASET_", 50054, 8300),
    ServiceSpec("trainer", "tracewheel.trainer", "TW_TRAINER_", 50055),
    ServiceSpec("agent", "tracewheel.agent", "TW_AGENT_", 50053),
)
NATS_PORT = 4222
TASK_SITE_PORT = 8400  # served by the agent service in the embedded stack


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def home_dir() -> Path:
    return Path(os.environ.get(HOME_VARIABLE, str(DEFAULT_HOME))).resolve()


@dataclass
class StackInfo:
    """What runs where; written to <home>/stack.json while the stack is up."""

    supervisor_pid: int
    nats_url: str
    services: dict[str, dict[str, int | None]] = field(default_factory=dict)

    @staticmethod
    def path(home: Path) -> Path:
        return home / "stack.json"

    def write(self, home: Path) -> None:
        write_json_atomically(self.path(home), asdict(self), indent=2)

    @classmethod
    def read(cls, home: Path) -> StackInfo | None:
        try:
            return cls(**json.loads(cls.path(home).read_text()))
        except FileNotFoundError:
            return None


def _stream_output(name: str, stream: TextIO, sink: TextIO, lock: threading.Lock) -> None:
    with stream:  # closed at EOF: the process exited (a killed one is restarted with a new pipe)
        for line in stream:
            with lock:
                sink.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
                sink.flush()


class Supervisor:
    """Starts and stops the local stack. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        home: Path,
        *,
        port_offset: int = 0,
        services: tuple[ServiceSpec, ...] = SERVICES,
        sink: TextIO = sys.stdout,
        health_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.env = dict(env or {})
        self.port_offset = port_offset
        self.services = services
        self.sink = sink
        self.health_timeout_s = health_timeout_s
        self.nats = NatsServer(home / "nats", port=NATS_PORT + port_offset, log_file=home / "logs" / "nats.log")
        self.children: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def grpc_port(self, spec: ServiceSpec) -> int:
        return spec.grpc_port + self.port_offset

    def http_port(self, spec: ServiceSpec) -> int | None:
        return None if spec.http_port is None else spec.http_port + self.port_offset

    def child_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(spec.env_prefix)} | {
            HOME_VARIABLE: str(self.home),
            f"{spec.env_prefix}GRPC_PORT": str(self.grpc_port(spec)),
            f"{spec.env_prefix}NATS_URL": self.nats.url,
            "PYTHONUNBUFFERED": "1",
        }
        env |= self.wiring(spec)
        # keep the user's own settings for this service (e.g. TW_INFERENCE_MODEL), but not ports
        env |= {k: v for k, v in os.environ.items() if k.startswith(spec.env_prefix) and not k.endswith("_PORT")}
        if spec.http_port is not None:
            env[f"{spec.env_prefix}HTTP_PORT"] = str(self.http_port(spec))
        # the caller's settings (the demo's) win over the user's environment
        others = tuple(s.env_prefix for s in self.services if s is not spec)
        env |= {k: v for k, v in self.env.items() if not k.startswith(others)}
        return env

    def base_model_dir(self) -> str:
        """The served base model's folder: the user's TW_INFERENCE_MODEL folder, or the default's cache."""
        from tracewheel.inference.model_store import DEFAULT_MODEL

        model = self.env.get("TW_INFERENCE_MODEL") or os.environ.get("TW_INFERENCE_MODEL", "")
        return model if model and Path(model).is_dir() else str(self.home / "models" / DEFAULT_MODEL)

    def wiring(self, spec: ServiceSpec) -> dict[str, str]:
        """How the services find each other on this stack's ports."""
        ports = {s.name: (self.grpc_port(s), self.http_port(s)) for s in self.services}
        site = TASK_SITE_PORT + self.port_offset
        table = {
            "agent": {
                "TW_AGENT_INFERENCE_URL": f"http://127.0.0.1:{ports['inference'][1]}/v1",
                "TW_AGENT_GATEWAY_ADDRESS": f"127.0.0.1:{ports['mcp-gateway'][0]}",
                "TW_AGENT_TASK_SITE_PORT": str(site),
                "TW_AGENT_TASK_SITE_URL": f"http://127.0.0.1:{site}",
            },
            "mcp-gateway": {"TW_GATEWAY_ALLOW_HOSTS": json.dumps([f"127.0.0.1:{site}", f"localhost:{site}"])},
            "dataset": {"TW_DATASET_BASE_MODEL": self.base_model_dir()},
            "trainer": {
                "TW_TRAINER_BASE_MODEL_DIR": self.base_model_dir(),
                "TW_TRAINER_AGENT_ADDRESS": f"127.0.0.1:{ports['agent'][0]}",
                "TW_TRAINER_INFERENCE_ADDRESS": f"127.0.0.1:{ports['inference'][0]}",
            },
        }
        return table.get(spec.name, {}) if spec.name in ports else {}

    def _start_child(self, spec: ServiceSpec) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            env=self.child_env(spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() reaches grandchildren too
        )
        self.children[spec.name] = process
        thread = threading.Thread(
            target=_stream_output, args=(spec.name, process.stdout, self.sink, self._lock), daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def start(self) -> StackInfo:
        """Starts NATS and every service and waits until each is healthy.

        Raises:
            Unavailable: a process exited or did not become healthy in time (the rest is stopped).
        """
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self.nats.start()
            for spec in self.services:
                self._start_child(spec)
            for spec in self.services:
                self._wait_healthy(spec)
        except BaseException:
            self.stop()
            raise
        info = StackInfo(
            supervisor_pid=os.getpid(),
            nats_url=self.nats.url,
            services={
                s.name: {
                    "pid": self.children[s.name].pid,
                    "grpc_port": self.grpc_port(s),
                    "http_port": self.http_port(s),
                }
                for s in self.services
            },
        )
        info.write(self.home)
        return info

    def _wait_healthy(self, spec: ServiceSpec) -> None:
        address = f"127.0.0.1:{self.grpc_port(spec)}"
        deadline = time.monotonic() + self.health_timeout_s
        while time.monotonic() < deadline:
            if self.children[spec.name].poll() is not None:
                raise Unavailable(f"{spec.name} exited with code {self.children[spec.name].returncode} during start-up")
            if wait_healthy(address, timeout_s=1.0):
                return
        raise Unavailable(f"{spec.name} not healthy on {address} after {self.health_timeout_s:.0f} s")

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to every child's process group, SIGKILL after `grace_s`, then NATS."""
        for process in self.children.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.children.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _signal_group(process, signal.SIGKILL)  # stragglers in the group (e.g. a browser)
        for thread in self._threads:
            thread.join(timeout=2.0)
        for process in self.children.values():
            if process.stdout is not None:
                process.stdout.close()
        self.nats.stop()
        StackInfo.path(self.home).unlink(missing_ok=True)

    def kill(self, name: str) -> None:
        """SIGKILL one service's process group (a crash, for fault tests) and reap it."""
        process = self.children[name]
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        """Starts a service that was stopped or killed again, on the same ports, and waits on its health.

        Raises:
            Unavailable: it did not become healthy in time.
        """
        spec = next(s for s in self.services if s.name == name)
        if self.children[name].poll() is None:
            self.kill(name)
        self._start_child(spec)
        self._wait_healthy(spec)

    def failed_child(self) -> str | None:
        """The name of a service that exited on its own, if any."""
        return next((name for name, p in self.children.items() if p.poll() is not None), None)

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
