"""Kubernetes mode: one batch/v1 Job per training job, and its status mapped to our JobState.

Objects are plain dicts (what `kubectl apply -f` and the `kubernetes` client's
`create_namespaced_job(body=...)` both accept), so this module needs no client library.
The pod runs `python -m tracewheel.trainer.train_cli DATASET MODEL OUTPUT`; the output lives
on the adapters PVC, so when the pod is retried (backoffLimit) or rescheduled it resumes from
the last checkpoint there. Nothing here has run against a cluster (see docs/trainer.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tracewheel.core.errors import InvalidArgument
from tracewheel.trainer.jobs import Job, JobState


@dataclass(frozen=True)
class K8sJobTemplate:
    """What every training Job shares; one per cluster, from the service's config."""

    image: str  # the trainer image with the `gpu` extra (bitsandbytes)
    namespace: str = "tracewheel"
    gpus: int = 1  # nvidia.com/gpu per pod; >1 needs an accelerate launch (not done here)
    cpu: str = "4"
    memory: str = "32Gi"
    datasets_pvc: str = "tracewheel-datasets"
    datasets_mount: str = "/data/datasets"  # dataset paths in events must be under this mount
    adapters_pvc: str = "tracewheel-adapters"
    adapters_mount: str = "/data/adapters"
    models_pvc: str = "tracewheel-models"
    models_mount: str = "/data/models"
    backoff_limit: int = 2  # pod retries; each resumes from the last checkpoint on the PVC
    ttl_seconds_after_finished: int = 24 * 3600  # the Job object is garbage-collected a day after it ends
    active_deadline_seconds: int | None = None
    service_account: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # e.g. TW_RECIPE_* overrides
    node_selector: dict[str, str] = field(default_factory=dict)


def k8s_job_name(job: Job) -> str:
    """A DNS-1123 label (<= 63 chars) derived from our job id."""
    name = re.sub(r"[^a-z0-9-]", "-", f"tw-train-{job.id}".lower())
    return name[:63].rstrip("-")


def _mounted(path: str, mount: str, what: str) -> str:
    if not PurePosixPath(path).is_relative_to(mount):
        raise InvalidArgument(f"{what} {path} is not under the PVC mount {mount}; the pod could not read it")
    return path


def _volume(name: str, claim: str, mount: str, read_only: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
    return volume, {"name": name, "mountPath": mount, "readOnly": read_only}


def build_k8s_job(job: Job, template: K8sJobTemplate) -> dict[str, Any]:
    """The batch/v1 Job manifest that trains `job` on the cluster.

    Raises:
        InvalidArgument: the dataset path is not on the datasets PVC.
    """
    dataset = _mounted(job.dataset_path, template.datasets_mount, "dataset")
    output = f"{template.adapters_mount}/{job.id}"
    labels = {"app.kubernetes.io/name": "tracewheel-trainer", "tracewheel.dev/job-id": job.id}
    volumes, mounts = zip(
        _volume("datasets", template.datasets_pvc, template.datasets_mount, read_only=True),
        _volume("models", template.models_pvc, template.models_mount, read_only=True),
        _volume("adapters", template.adapters_pvc, template.adapters_mount, read_only=False),
        strict=True,
    )
    resources = {"cpu": template.cpu, "memory": template.memory, "nvidia.com/gpu": str(template.gpus)}
    container = {
        "name": "trainer",
        "image": template.image,
        "command": ["python", "-m", "tracewheel.trainer.train_cli"],
        "args": [dataset, f"{template.models_mount}/{job.base_model}", output],
        "env": [{"name": k, "value": v} for k, v in sorted(template.env.items())],
        "resources": {"requests": resources, "limits": resources},
        "volumeMounts": list(mounts),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # retries are new pods, counted by backoffLimit
        "containers": [container],
        "volumes": list(volumes),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if template.node_selector:
        pod_spec["nodeSelector"] = dict(template.node_selector)
    if template.service_account:
        pod_spec["serviceAccountName"] = template.service_account
    spec: dict[str, Any] = {
        "backoffLimit": template.backoff_limit,
        "ttlSecondsAfterFinished": template.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if template.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = template.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": k8s_job_name(job), "namespace": template.namespace, "labels": labels},
        "spec": spec,
    }


def state_from_k8s_status(status: dict[str, Any] | None, suspended: bool = False) -> tuple[JobState, str]:
    """Our state (and a failure reason) for a batch/v1 Job's `.status`.

    Complete -> SUCCEEDED; Failed (BackoffLimitExceeded, DeadlineExceeded, ...) -> FAILED with
    its reason and message; suspended or not started -> QUEUED; started -> RUNNING (which
    includes a pod still waiting for a GPU node).
    Deleting the Job is how we cancel, so CANCELLED is never read from the cluster.
    """
    status = status or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions:
        return JobState.SUCCEEDED, ""
    if "Failed" in conditions:
        failed = conditions["Failed"]
        return JobState.FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": ")
    if suspended or "Suspended" in conditions:
        return JobState.QUEUED, ""
    # FailureTarget / SuccessCriteriaMet (k8s >= 1.31) precede Failed / Complete while pods terminate
    if status.get("active") or status.get("startTime") or {"FailureTarget", "SuccessCriteriaMet"} & conditions.keys():
        return JobState.RUNNING, ""
    return JobState.QUEUED, ""
