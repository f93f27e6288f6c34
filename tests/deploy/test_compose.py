"""docker-compose.yml and the Dockerfiles against the project's rules, without a container engine.

Health checks on every service, start order on healthy NATS, the gpu profile's device
reservations, secrets required through `${VAR:?...}`, settings the services accept, ports as in
the architecture; multi-stage non-root Dockerfiles with a pinned, substitutable base image.
"""

from __future__ import annotations

import re

import pytest
from deploy_helpers import GRPC_PORTS, HTTP_PORTS, NATS_CLIENT_PORT, ROOT, image_name, unknown_tw_variables

CPU_SERVICES = ("inference", "mcp-gateway", "agent", "dataset", "trainer")
GPU_VARIANTS = {"inference-gpu": "inference", "trainer-gpu": "trainer"}
DOCKERFILES = {
    "inference": "services/inference/Dockerfile",
    "inference-gpu": "services/inference/Dockerfile.gpu",
    "mcp-gateway": "services/mcp-gateway/Dockerfile",
    "agent": "services/agent/Dockerfile",
    "dataset": "services/dataset/Dockerfile",
    "trainer": "services/trainer/Dockerfile",
    "trainer-gpu": "services/trainer/Dockerfile.gpu",
}
PACKAGES = {name: name for name in CPU_SERVICES} | {"mcp-gateway": "gateway"}
REQUIRED = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_the_services_and_their_images(compose):
    services = compose["services"]
    assert set(services) == {"nats", "task-site", *CPU_SERVICES, *GPU_VARIANTS}
    for name in (*CPU_SERVICES, *GPU_VARIANTS):
        assert services[name]["image"] == f"tracewheel/{name}:${{TAG:-dev}}", name
        build = services[name]["build"]
        assert build["dockerfile"] == DOCKERFILES[name] and (ROOT / build["dockerfile"]).is_file(), name
        assert build["context"] == ".", f"{name}: the build context is the repository root"
    assert image_name(services["task-site"]["image"]) == "tracewheel/agent"


def test_every_service_has_a_health_check_on_its_own_port(compose):
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} has no exec health check"
        base = GPU_VARIANTS.get(name, name)
        if base in GRPC_PORTS:
            assert test[1:] == ["python", "-m", "tracewheel.core.health", f"127.0.0.1:{GRPC_PORTS[base]}"], name
        elif name == "task-site":
            assert f"127.0.0.1:{HTTP_PORTS['task-site']}/" in " ".join(test)
        else:
            assert "healthz?js-enabled-only=true" in " ".join(test), "NATS must be healthy only with JetStream"


def test_services_start_after_healthy_nats_and_only_on_healthy_dependencies(compose):
    for name, service in compose["services"].items():
        if name == "nats":
            continue
        depends = service.get("depends_on")
        assert isinstance(depends, dict) and "nats" in depends, f"{name} does not wait for NATS"
        for dependency, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}: {condition}"
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


def test_nats_runs_jetstream_on_a_volume(compose):
    nats = compose["services"]["nats"]
    command = nats["command"]
    assert "-js" in command and command[command.index("-sd") + 1] == "/data"
    assert any(v.split(":")[1] == "/data" and v.split(":")[0] in compose["volumes"] for v in nats["volumes"])
    assert image_name(nats["image"]) == "nats" and re.fullmatch(r"nats:2\.\d+\.\d+-alpine", nats["image"])
    assert any(p.endswith(f":{NATS_CLIENT_PORT}") for p in nats["ports"])


def test_gpu_profile_reserves_nvidia_devices_and_cpu_is_the_default(compose):
    for name, service in compose["services"].items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        if name in GPU_VARIANTS:
            assert service.get("profiles") == ["gpu"], name
            assert devices and all(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
        else:
            assert "profiles" not in service, f"{name} must start by default"
            assert not devices, f"{name} reserves devices outside the gpu profile"
    # the GPU pair stands in for the CPU pair (scaled to 0) under the same names
    assert compose["services"]["inference-gpu"]["networks"]["default"]["aliases"] == ["inference"]


def test_secrets_are_required_and_services_run_as_production(compose):
    for name, service in compose["services"].items():
        env = _environment(service)
        base = GPU_VARIANTS.get(name, name)
        if base not in CPU_SERVICES:
            continue
        tokens = {k: v for k, v in env.items() if k.endswith("_AUTH_TOKEN")}
        assert len(tokens) == 1, f"{name} has no auth token"
        assert all(REQUIRED.match(str(v)) for v in tokens.values()), f"{name}: token not required via ${{VAR:?}}"
        assert any(k.endswith("_ENVIRONMENT") and v == "production" for k, v in env.items()), name
    secrets = [str(v) for s in compose["services"].values() for k, v in _environment(s).items() if "TOKEN" in k]
    assert secrets and all(REQUIRED.match(v) for v in secrets)


def test_settings_are_ones_the_services_accept(compose):
    for name, service in compose["services"].items():
        base = GPU_VARIANTS.get(name, name)
        if base in CPU_SERVICES:
            unknown = unknown_tw_variables(base, list(_environment(service)))
            assert not unknown, f"{name} would refuse to start: {unknown}"


def test_published_ports_are_the_architecture_ports_on_loopback(compose):
    for name, service in compose["services"].items():
        base = GPU_VARIANTS.get(name, name)
        expected = {GRPC_PORTS.get(base), HTTP_PORTS.get(base)} - {None}
        if name == "nats":
            expected = {NATS_CLIENT_PORT}
        published = {int(p.rsplit(":", 1)[1]) for p in service.get("ports", [])}
        assert published == expected, f"{name} publishes {published}, expected {expected}"
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", [])), f"{name} publishes beyond loopback"


def test_volumes_are_declared(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], f"{name} mounts undeclared {volume}"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfiles_are_multi_stage_non_root_with_a_pinned_base(image):
    text = (ROOT / DOCKERFILES[image]).read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "no ARG BASE_IMAGE with a default"
    assert re.fullmatch(r"[\w./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?", base.group(1)) and ":latest" not in base.group(1)
    assert len(re.findall(r"^FROM \$\{BASE_IMAGE\}", text, re.MULTILINE)) >= 2, "not multi-stage on BASE_IMAGE"
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage runs as root"
    service = GPU_VARIANTS.get(image, image)
    assert f'"tracewheel.core.health", "127.0.0.1:{GRPC_PORTS[service]}"' in text, "HEALTHCHECK on the wrong port"
    assert f'ENTRYPOINT ["python", "-m", "tracewheel.{PACKAGES[service]}"]' in text
    assert "-c /src/constraints" in text, "installs without the project's pins"
