"""A Docker API for the container tests: the Docker engine when it answers, else rootful podman.

Podman (Debian's 4.x) serves the Docker API on a socket started here, with the project's
containers.conf (runc, ulimits within this machine's limits); Ryuk is disabled (it needs a
registry image) and testcontainers reaches containers through the ports mapped on the host.
Missing service images are built first with scripts/build-images.sh (one at a time, niced).
Without an engine the tests skip, unless TW_REQUIRE_CONTAINERS=1 (CI's container stage sets
it) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PODMAN_SOCKET = Path("/run/podman/podman.sock")
TAG = os.environ.get("TAG", "dev")
IMAGES = ("inference", "mcp-gateway", "agent", "dataset", "trainer")


def _docker_answers() -> bool:
    import docker

    try:
        client = docker.from_env()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no socket, no permission: all mean "not this way"
        return False


def _start_podman_service(log: Path) -> subprocess.Popen[bytes]:
    podman = shutil.which("podman")
    if podman is None or os.geteuid() != 0:
        reason = "no Docker engine answers and rootful podman is not available (see docs/containers.md)"
        if os.environ.get("TW_REQUIRE_CONTAINERS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    PODMAN_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    PODMAN_SOCKET.unlink(missing_ok=True)
    with log.open("wb") as sink:
        service = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{PODMAN_SOCKET}"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 30
    while not (PODMAN_SOCKET.exists() and _docker_answers()):
        if service.poll() is not None or time.monotonic() > deadline:
            service.kill()
            pytest.fail(f"podman's API service did not answer on {PODMAN_SOCKET}: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    return service


@pytest.fixture(scope="session")
def container_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """'docker' or 'podman'; the environment points testcontainers at it for the session."""
    with pytest.MonkeyPatch.context() as env:
        if _docker_answers():
            yield "docker"
            return
        env.setenv("CONTAINERS_CONF", os.environ.get("CONTAINERS_CONF", str(ROOT / "scripts/podman-containers.conf")))
        env.setenv("DOCKER_HOST", f"unix://{PODMAN_SOCKET}")
        # a podman service someone already runs on the socket is used as it is
        service = None if _docker_answers() else _start_podman_service(tmp_path_factory.mktemp("podman") / "log")
        env.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
        env.setenv("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
        from testcontainers.core.config import ConnectionMode, testcontainers_config

        testcontainers_config.ryuk_disabled = True
        testcontainers_config.connection_mode_override = ConnectionMode.docker_host
        try:
            yield "podman"
        finally:
            if service is not None:
                service.terminate()
                service.wait(timeout=30)


@pytest.fixture(scope="session")
def service_images(container_engine: str) -> dict[str, str]:
    """The images of IMAGES by name, built when missing."""
    import docker

    client = docker.from_env()
    names = {name: f"tracewheel/{name}:{TAG}" for name in IMAGES}
    missing = []
    for name, image in names.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(name)
    client.close()
    if missing:
        env = {**os.environ, "ENGINE": container_engine, "TAG": TAG}
        build = subprocess.run(["bash", "scripts/build-images.sh", *missing], cwd=ROOT, env=env, check=False)
        assert build.returncode == 0, f"building {missing} failed (see the output above)"
    return names
