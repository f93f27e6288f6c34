"""One student base model per deployment profile: inference serves it, dataset builds tokenize and
render with it, the trainer trains it. compose names it once (x-student-model, STUDENT_MODEL) and
k8s once (the student-model ConfigMap); rendered, every profile's three services agree."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_helpers import containers, find, interpolate

BASE_MODEL_SETTINGS = {
    "inference": "TW_INFERENCE_MODEL",
    "dataset": "TW_DATASET_BASE_MODEL",
    "trainer": "TW_TRAINER_BASE_MODEL_DIR",
}
# the services of each compose profile: the gpu pair stands in for the CPU pair under its names
COMPOSE_PROFILES = {
    "cpu": {"inference": "inference", "dataset": "dataset", "trainer": "trainer"},
    "gpu": {"inference": "inference-gpu", "dataset": "dataset", "trainer": "trainer-gpu"},
}


def compose_base_models(compose: dict[str, Any], profile: str, env: dict[str, str]) -> dict[str, str]:
    rendered = interpolate(compose, env)["services"]
    return {
        role: rendered[service]["environment"][BASE_MODEL_SETTINGS[role]]
        for role, service in COMPOSE_PROFILES[profile].items()
    }


@pytest.mark.parametrize("profile", sorted(COMPOSE_PROFILES))
@pytest.mark.parametrize("student", [None, "/data/models/Qwen3-4B"])
def test_compose_profiles_serve_build_and_train_one_base_model(
    compose: dict[str, Any], profile: str, student: str | None
) -> None:
    env = {"STUDENT_MODEL": student} if student else {}
    models = compose_base_models(compose, profile, env)

    assert len(set(models.values())) == 1, f"{profile} profile disagrees on the base model: {models}"
    assert models["inference"] == (student or "/data/models/SmolLM2-135M-Instruct")


def setting(objects: list[dict[str, Any]], container: dict[str, Any], name: str) -> str:
    """The value a container's environment gives `name` (env, then envFrom ConfigMaps, as Kubernetes reads them)."""
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    for entry in container.get("env", []):
        if entry["name"] == name:
            if "value" in entry:
                return str(entry["value"])
            ref = entry["valueFrom"]["configMapKeyRef"]
            return maps[ref["name"]][ref["key"]]
    for source in container.get("envFrom", []):
        data = maps[source["configMapRef"]["name"]]
        if name in data:
            return data[name]
    raise AssertionError(f"{container['name']} does not set {name}")


@pytest.mark.parametrize(
    ("overlay", "expected"), [("cpu-demo", "/data/models/SmolLM2-135M-Instruct"), ("gpu", "/data/models/Qwen3-4B")]
)
def test_k8s_overlays_serve_build_and_train_one_base_model(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, expected: str
) -> None:
    objects = rendered[overlay]
    models = {}
    for service, name in BASE_MODEL_SETTINGS.items():
        (container,) = containers(find(objects, "Deployment", service))
        models[service] = setting(objects, container, name)

    assert models == dict.fromkeys(BASE_MODEL_SETTINGS, expected)
