"""Helpers of the deployment checks (tests/deploy): rendering, lookups, the services' settings.

Ports come from the local supervisor's table (`tracewheel.cli.stack`), the same numbers as the
shared architecture's; env variable names from each service's settings class.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from tracewheel.cli.stack import NATS_PORT, SERVICES, TASK_SITE_PORT
from tracewheel.core.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("cpu-demo", "gpu")
KUSTOMIZE_NAMESPACE = "tracewheel"

GRPC_PORTS = {spec.name: spec.grpc_port for spec in SERVICES}
HTTP_PORTS = {spec.name: spec.http_port for spec in SERVICES if spec.http_port is not None} | {
    "task-site": TASK_SITE_PORT
}
METRICS_PORTS = {"agent": 9464, "trainer": 9464}  # gRPC-only services serve /metrics on TW_*_METRICS_PORT
NATS_CLIENT_PORT = NATS_PORT


def settings_classes() -> dict[str, type[ServiceSettings]]:
    """Each service's settings class by its name in the stack, compose and k8s."""
    from tracewheel.agent.config import AgentSettings
    from tracewheel.dataset.config import DatasetSettings
    from tracewheel.gateway.config import GatewaySettings
    from tracewheel.inference.config import InferenceSettings
    from tracewheel.trainer.config import TrainerSettings

    return {
        "inference": InferenceSettings,
        "mcp-gateway": GatewaySettings,
        "agent": AgentSettings,
        "dataset": DatasetSettings,
        "trainer": TrainerSettings,
    }


def known_variables(settings_cls: type[ServiceSettings]) -> set[str]:
    """The environment variables `load_settings` accepts (an alias such as TRACEWHEEL_HOME wins)."""
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    names = set()
    for name, info in settings_cls.model_fields.items():
        alias = info.validation_alias
        names.add(str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"{prefix}{name}".upper())
    return names


def unknown_tw_variables(service: str, names: list[str]) -> list[str]:
    """Names under `service`'s TW_ prefix that its settings would refuse (see load_settings)."""
    settings_cls = settings_classes()[service]
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    return [name for name in names if name.startswith(prefix) and name not in known_variables(settings_cls)]


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH: the overlays cannot be rendered (install kubectl to run these checks)")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """`value` (a compose file's parsed YAML) with its `${VAR}`, `${VAR:-default}`, `${VAR-default}`
    and `${VAR:?message}` filled in from `env` as `docker compose` does; a required variable that
    `env` lacks becomes `<VAR>`, so the rest of the file can still be read."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        unset = name not in env or (op.startswith(":") and not env[name])
        if not unset:
            return env[name]
        return arg if op.endswith("-") else f"<{name}>" if op.endswith("?") else ""

    return _VARIABLE.sub(fill, value)


def image_name(image: str) -> str:
    """`tracewheel/agent:dev` -> `tracewheel/agent` (a registry port is not a tag)."""
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":", 1)[0].split("@", 1)[0]
