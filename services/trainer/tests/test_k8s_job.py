"""The Kubernetes Job manifest and the status -> state mapping (no cluster here)."""

from __future__ import annotations

import pytest

from tracewheel.core.errors import InvalidArgument
from tracewheel.trainer.jobs import Job, JobState
from tracewheel.trainer.k8s_job import K8sJobTemplate, build_k8s_job, k8s_job_name, state_from_k8s_status

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
