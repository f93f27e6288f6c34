"""The Kubernetes Job manifest and the status -> state mapping (no cluster here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracewheel.core.errors import ConfigError, InvalidArgument
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.k8s_job import (
    JOB_ID_ANNOTATION,
    MANAGED_BY,
    K8sJobTemplate,
    build_k8s_job,
    k8s_job_name,
    load_job_template,
)
from tracewheel.trainer.k8s_status import state_from_k8s_status

JOB = Job("agent-20261121-171500-1a2b3c", "v7", "/data/datasets/v7", "Qwen3-4B")
TEMPLATE = K8sJobTemplate(image="registry.local/tracewheel-trainer:0.1", gpus=2, env={"TW_RECIPE_LORA_R": "32"})


def test_manifest_has_image_gpus_volumes_env_and_limits() -> None:
    manifest = build_k8s_job(JOB, TEMPLATE)

    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == "Job"
    assert manifest["metadata"]["name"] == "tw-train-agent-20261121-171500-1a2b3c"
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 2 and spec["ttlSecondsAfterFinished"] == 86400
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == TEMPLATE.image
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["args"] == ["/data/datasets/v7", "/data/models/Qwen3-4B", f"/data/adapters/{JOB.id}"]
    assert {"name": "TW_RECIPE_LORA_R", "value": "32"} in container["env"]
    claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"]}
    assert claims["adapters"] == {"claimName": "tracewheel-adapters", "readOnly": False}
    assert claims["datasets"]["readOnly"] is True
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"datasets": "/data/datasets", "models": "/data/models", "adapters": "/data/adapters"}


def test_dataset_off_the_pvc_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not under the PVC mount"):
        build_k8s_job(Job("j", "v", "/tmp/elsewhere", "m"), TEMPLATE)


def test_job_name_is_a_dns_label() -> None:
    name = k8s_job_name(Job("Agent_" + "x" * 80, "v", "/d", "m"))
    assert len(name) <= 63 and name == name.lower() and "_" not in name


@pytest.mark.parametrize(
    ("status", "suspended", "expected"),
    [
        (None, False, (JobState.QUEUED, "")),
        ({}, True, (JobState.QUEUED, "")),
        ({"active": 1, "startTime": "2026-11-21T17:00:00Z"}, False, (JobState.RUNNING, "")),
        ({"conditions": [{"type": "FailureTarget", "status": "True"}]}, False, (JobState.RUNNING, "")),
        ({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}, False, (JobState.SUCCEEDED, "")),
        (
            {
                "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "3 pods"}
                ]
            },
            False,
            (JobState.FAILED, "BackoffLimitExceeded: 3 pods"),
        ),
        ({"conditions": [{"type": "Complete", "status": "False"}], "active": 1}, False, (JobState.RUNNING, "")),
    ],
)
def test_status_maps_to_our_state(status, suspended: bool, expected: tuple[JobState, str]) -> None:  # type: ignore[no-untyped-def]
    assert state_from_k8s_status(status, suspended) == expected


def test_the_job_carries_the_adoption_marks_and_the_launch_for_its_gpus() -> None:
    manifest = build_k8s_job(JOB, TEMPLATE, recipe_file=f"/data/adapters/{JOB.id}/recipe.yaml")

    assert manifest["metadata"]["annotations"] == {JOB_ID_ANNOTATION: JOB.id}
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == MANAGED_BY
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["torchrun", "--standalone", "--nproc-per-node=2"]
    assert container["args"][3:] == ["--recipe", f"/data/adapters/{JOB.id}/recipe.yaml"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    one_gpu = build_k8s_job(JOB, TEMPLATE.model_copy(update={"gpus": 1}))
    assert one_gpu["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["python", "-m"]
    shared_memory = build_k8s_job(JOB, TEMPLATE.model_copy(update={"shm_size": "8Gi"}))["spec"]["template"]["spec"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in shared_memory["volumes"]


def test_a_warm_start_or_a_model_off_the_volumes_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="model /models/Qwen3-4B is not under the PVC mount /data/models"):
        build_k8s_job(JOB, TEMPLATE, base_model_path="/models/Qwen3-4B")
    warm = Job(JOB.id, "v7", "/data/datasets/v7", "Qwen3-4B", init_adapter="/tmp/adapter")
    with pytest.raises(InvalidArgument, match="warm-start adapter /tmp/adapter"):
        build_k8s_job(warm, TEMPLATE)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("image: [unclosed", "not valid YAML"),
        ("- image: x", "expected a mapping"),
        ("image: x", "gpus: Field required"),
        ("image: x\ngpus: 1\ngpu: 2", "gpu: Extra inputs are not permitted"),
        ("image: x\ngpus: -1", "gpus: Input should be greater than or equal to 0"),
    ],
)
def test_a_template_that_does_not_load_names_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "job-template.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"Job template {path}: .*{re.escape(problem)}"):
        load_job_template(path)


def test_a_missing_template_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_job_template(tmp_path / "absent.yaml")
