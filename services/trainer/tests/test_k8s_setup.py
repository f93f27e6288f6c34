"""The Kubernetes runner's start-up: each bad setting is a clear error at start, not a hang or a failed job later."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tracewheel.core.errors import ConfigError
from tracewheel.core.natsserver import free_port
from tracewheel.trainer.config import TrainerSettings
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.k8s_job import K8sJobTemplate, build_k8s_job
from tracewheel.trainer.k8s_runner import KubernetesTraining
from tracewheel.trainer.k8s_setup import start_kubernetes_training
from tracewheel.trainer.recipe import Recipe

from .k8s_standin import FakeCluster

CLAIMS = ("tracewheel-datasets", "tracewheel-models", "tracewheel-adapters")


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(claims=CLAIMS) as running:
        yield running


def settings_for(tmp_path: Path, server: str, template: dict[str, object] | str, **changes: object) -> TrainerSettings:
    """Settings of a trainer whose volumes are folders under tmp_path, on the API server at `server`."""
    for folder in ("datasets", "adapters", "models"):
        (tmp_path / folder).mkdir(exist_ok=True)
    fields = {
        "image": "tracewheel/trainer:dev",
        "gpus": 1,
        "datasets_mount": str(tmp_path / "datasets"),
        "adapters_mount": str(tmp_path / "adapters"),
        "models_mount": str(tmp_path / "models"),
    }
    path = tmp_path / "job-template.yaml"
    path.write_text(template if isinstance(template, str) else yaml.safe_dump(fields | template))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(FakeCluster.kubeconfig_for(server))
    options = {
        "runner": "kubernetes",
        "job_template": path,
        "kubeconfig": kubeconfig,
        "adapters_dir": tmp_path / "adapters",
        "events": False,
    }
    return TrainerSettings(**(options | changes))  # type: ignore[arg-type]


def test_a_sound_setup_starts_and_ends_jobs_of_ended_training(cluster: FakeCluster, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, cluster.url, {})
    ended = Job("agent-1", "ds-1", str(tmp_path / "datasets" / "ds-1"), "m", state=JobState.CANCELLED)
    running = Job("agent-2", "ds-2", str(tmp_path / "datasets" / "ds-2"), "m", state=JobState.RUNNING)
    template = K8sJobTemplate(image="x", gpus=1, datasets_mount=str(tmp_path / "datasets"))
    for job in (ended, running):
        manifest = build_k8s_job(job, template, base_model_path=f"{template.models_mount}/m")
        cluster.create_job(manifest)
        cluster.set_job_status(manifest["metadata"]["name"], active=1)

    training = start_kubernetes_training(settings, Recipe(), [ended, running])

    assert isinstance(training, KubernetesTraining)
    assert [name for name, _ in cluster.deleted] == ["tw-train-agent-1"]  # the running job's Job is adopted


@pytest.mark.parametrize(
    ("template", "changes", "problem"),
    [
        ("image: [", {}, "not valid YAML"),
        ({"gpus": None}, {}, "gpus: Input should be a valid integer"),
        ({"gpus": 0}, {"recipe": Recipe(load_in_4bit=True)}, "the recipe trains on CUDA"),
        ({"adapters_mount": "/data/adapters"}, {}, "but the Jobs write adapters to the template's adapters_mount"),
        ({"datasets_mount": "/nonexistent/datasets"}, {}, "/nonexistent/datasets is not a folder here"),
        ({"datasets_pvc": "typo-datasets"}, {}, "PersistentVolumeClaim(s) typo-datasets named in the Job template"),
        ({}, {"base_model_dir": Path("/elsewhere/model")}, "is not under the template's models_mount"),
    ],
)
def test_a_bad_setup_is_a_config_error_at_start(
    cluster: FakeCluster, tmp_path: Path, template: dict[str, object] | str, changes: dict[str, object], problem: str
) -> None:
    recipe = changes.pop("recipe", Recipe())
    settings = settings_for(tmp_path, cluster.url, template, **changes)
    with pytest.raises(ConfigError) as raised:
        start_kubernetes_training(settings, recipe, [])  # type: ignore[arg-type]
    assert problem in str(raised.value)
    assert cluster.created == []


def test_an_api_server_that_cannot_be_reached_is_a_config_error_at_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"http://127.0.0.1:{free_port()}", {})
    with pytest.raises(ConfigError, match=r"cannot reach the Kubernetes API server at http://127\.0\.0\.1:"):
        start_kubernetes_training(settings, Recipe(), [])


def test_the_service_exits_at_start_with_the_templates_problem(tmp_path: Path) -> None:
    template = tmp_path / "job-template.yaml"
    template.write_text("image: tracewheel/trainer-gpu:dev\n")  # no gpus
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_TRAINER_")} | {
        "TRACEWHEEL_HOME": str(tmp_path),
        "TW_TRAINER_RUNNER": "kubernetes",
        "TW_TRAINER_JOB_TEMPLATE": str(template),
        "TW_TRAINER_EVENTS": "false",
        "TW_TRAINER_GRPC_PORT": str(free_port()),
    }
    started = subprocess.run(
        [sys.executable, "-m", "tracewheel.trainer"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert started.returncode == 2, started.stderr[-2000:]
    assert f"trainer: Job template {template}: gpus: Field required" in started.stderr
