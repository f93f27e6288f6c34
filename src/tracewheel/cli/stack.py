"""The local stack: nats-server plus every service as a child process.

`Supervisor` starts NATS (a user per service, tracewheel.core.nats_auth; the passwords are kept
in `<home>/nats/passwords.json`), then the services in order, waits on their gRPC health, streams
their output with a `[name]` prefix, and on stop sends SIGTERM to each child's process group
(then SIGKILL after a grace period) so no process, grandchildren included, is left behind.
`watch()` restarts a service that died, after an exponentially growing, capped delay, as compose
and k8s restart a container. The stack's addresses, restart counts and last exit codes are written
to `<home>/stack.json` for `tracewheel status`.
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
from tracewheel.core.nats_auth import ROLES, load_or_create_passwords
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.settings import DEFAULT_HOME, HOME_VARIABLE
from tracewheel.core.trace_size import configured_max_trace_bytes


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
    # name -> pid, grpc_port, http_port, restarts, last_exit (None: has not exited)
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


@dataclass(frozen=True)
class RestartPolicy:
    """When a service that died is started again: `first_delay_s` after its exit, doubling with each
    crash in a row up to `max_delay_s`; one that had run `stable_s` before dying starts the count anew."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_s: float = 60.0

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.max_delay_s, self.first_delay_s * 2 ** max(0, crashes_in_a_row - 1))


@dataclass
class RestartState:
    """One service's restarts, as `tracewheel status` shows them."""

    restarts: int = 0
    last_exit: int | None = None  # the exit code (negative: the signal) of its last death
    crashes_in_a_row: int = 0
    started_at: float = 0.0  # time.monotonic() of its last start
    due_at: float | None = None  # when a pending restart happens (None: none pending)


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
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.home = home
        self.env = dict(env or {})
        self.port_offset = port_offset
        self.services = services
        self.sink = sink
        self.health_timeout_s = health_timeout_s
        self.nats = NatsServer(
            home / "nats",
            port=NATS_PORT + port_offset,
            log_file=home / "logs" / "nats.log",
            max_trace_bytes=configured_max_trace_bytes(os.environ | self.env),  # the services' limit (one policy)
            passwords=load_or_create_passwords(home / "nats" / "passwords.json"),
        )
        self.children: dict[str, subprocess.Popen] = {}
        self.policy = restart_policy or RestartPolicy()
        self.states = {spec.name: RestartState() for spec in services}
        self._stopping = False
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
        if spec.name in ROLES:  # its own NATS user; the gateway uses no NATS
            credentials = self.nats.credentials(spec.name)
            env[f"{spec.env_prefix}NATS_USER"] = credentials.nats_user
            env[f"{spec.env_prefix}NATS_PASSWORD"] = credentials.nats_password.get_secret_value()  # type: ignore[union-attr]
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
            "dataset": {
                "TW_DATASET_BASE_MODEL": self.base_model_dir(),
                "TW_DATASET_TRAINER_ADDRESS": f"127.0.0.1:{ports['trainer'][0]}",
                "TW_DATASET_INFERENCE_ADDRESS": f"127.0.0.1:{ports['inference'][0]}",
                "TW_DATASET_AGENT_ADDRESS": f"127.0.0.1:{ports['agent'][0]}",
            },
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
        self.states[spec.name].started_at = time.monotonic()
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
        info = self.info()
        info.write(self.home)
        return info

    def info(self) -> StackInfo:
        """What runs where now, with each service's restarts."""
        services: dict[str, dict[str, int | None]] = {}
        for spec in self.services:
            state = self.states[spec.name]
            services[spec.name] = {
                "pid": self.children[spec.name].pid,
                "grpc_port": self.grpc_port(spec),
                "http_port": self.http_port(spec),
                "restarts": state.restarts,
                "last_exit": state.last_exit,
            }
        return StackInfo(supervisor_pid=os.getpid(), nats_url=self.nats.url, services=services)

    def watch(self) -> list[str]:
        """Restarts the services that died: notes the exit, waits the policy's delay, starts the
        service again (not waiting on its health: `tracewheel status` shows it). Call it
        periodically; returns what happened, a line per event, and rewrites stack.json then."""
        events: list[str] = []
        now = time.monotonic()
        for spec in self.services:
            state, process = self.states[spec.name], self.children[spec.name]
            if self._stopping:
                break
            if state.due_at is None and (code := process.poll()) is not None:
                ran_s = now - state.started_at
                state.crashes_in_a_row = 1 if ran_s >= self.policy.stable_s else state.crashes_in_a_row + 1
                state.last_exit = code
                delay = self.policy.delay(state.crashes_in_a_row)
                state.due_at = now + delay
                events.append(f"{spec.name} exited with code {code} after {ran_s:.0f} s; restarting in {delay:.0f} s")
            elif state.due_at is not None and now >= state.due_at:
                state.due_at = None
                state.restarts += 1
                self._start_child(spec)
                events.append(
                    f"{spec.name} started again (restart {state.restarts}, pid {self.children[spec.name].pid})"
                )
        if events and not self._stopping:
            self.info().write(self.home)
        return events

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
        self._stopping = True  # no restart from here on
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

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
