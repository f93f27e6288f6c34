"""NATS users in docker-compose.yml and the k8s overlays: the server runs the configuration
tracewheel.core.nats_auth generates, with every password from a secret, and each service
connects as its own user."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from deploy_helpers import ROOT, containers, find

from tracewheel.core.nats_auth import ROLES, USERS, new_password, password_variable, server_config
from tracewheel.core.natsserver import nats_server_binary
from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, wire_limit

CONFIG = ROOT / "k8s" / "base" / "nats-tracewheel.conf"
REQUIRED = re.compile(r"^\$\{([A-Z][A-Z0-9_]*):\?[^}]+\}$")
COMPOSE_USERS = {
    "inference": "inference",
    "inference-gpu": "inference",
    "dataset": "dataset",
    "trainer": "trainer",
    "trainer-gpu": "trainer",
    "agent": "agent",
}


def test_the_committed_config_is_the_generated_one() -> None:
    expected = server_config(max_payload=wire_limit(DEFAULT_MAX_TRACE_BYTES))
    assert CONFIG.read_text() == expected, "regenerate: python -m tracewheel.core.nats_auth config > " + str(CONFIG)


def test_compose_runs_nats_with_it_and_every_password_is_required(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    target = next(c["target"] for c in nats["configs"] if c["source"] == "nats-tracewheel")
    assert nats["command"][nats["command"].index("-c") + 1] == target
    assert (ROOT / compose["configs"]["nats-tracewheel"]["file"]).resolve() == CONFIG
    for user in USERS:
        value = str(nats["environment"][password_variable(user)])
        assert REQUIRED.match(value) and REQUIRED.match(value).group(1) == password_variable(user)


@pytest.mark.parametrize(("service", "user"), sorted(COMPOSE_USERS.items()))
def test_each_compose_service_connects_as_its_own_user(compose: dict[str, Any], service: str, user: str) -> None:
    env = compose["services"][service]["environment"]
    prefix = next(key for key in env if key.endswith("_NATS_URL")).removesuffix("NATS_URL")
    assert env[f"{prefix}NATS_USER"] == user and user in ROLES
    password = REQUIRED.match(str(env[f"{prefix}NATS_PASSWORD"]))
    assert password and password.group(1) == password_variable(user)


@pytest.mark.parametrize("overlay", ["cpu-demo", "gpu"])
def test_k8s_nats_reads_the_passwords_from_the_secret_and_services_use_their_own(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    assert maps["nats-tracewheel"]["tracewheel.conf"] == CONFIG.read_text()
    assert "include ./tracewheel.conf" in maps["nats-config"]["nats.conf"]
    (server,) = containers(find(objects, "StatefulSet", "nats"))
    assert {"secretRef": {"name": "tracewheel-nats"}} in server["envFrom"]
    for service, user in (
        ("inference", "inference"),
        ("dataset", "dataset"),
        ("trainer", "trainer"),
        ("agent", "agent"),
    ):
        (container,) = containers(find(objects, "Deployment", service))
        prefix = f"TW_{service.upper()}_"
        config = {
            k: v for source in container.get("envFrom", []) for k, v in maps[source["configMapRef"]["name"]].items()
        }
        assert config[f"{prefix}NATS_USER"] == user
        password = next(e for e in container["env"] if e["name"] == f"{prefix}NATS_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"] == {"name": "tracewheel-nats", "key": password_variable(user)}


def test_nats_server_accepts_the_k8s_configuration(rendered: dict[str, list[dict[str, Any]]], tmp_path) -> None:
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in rendered["cpu-demo"] if o["kind"] == "ConfigMap"}
    config = maps["nats-config"]["nats.conf"].replace("store_dir: /data", f"store_dir: {tmp_path}")
    (tmp_path / "nats.conf").write_text(config)
    (tmp_path / "tracewheel.conf").write_text(maps["nats-tracewheel"]["tracewheel.conf"])
    env = {password_variable(user): new_password() for user in USERS} | {"POD_NAME": "nats-0"}
    checked = subprocess.run(
        [nats_server_binary(), "-c", str(tmp_path / "nats.conf"), "-t"], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
