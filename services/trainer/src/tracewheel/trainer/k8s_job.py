"""Kubernetes mode: one batch/v1 Job per training job, built from the Job template.

Objects are plain dicts (what `kubectl apply -f` and the `kubernetes` client's
`create_namespaced_job(body=...)` both accept), so this module needs no client library. The
template is a YAML file of `K8sJobTemplate` options (the `trainer-job-template` ConfigMap);
`load_job_template` refuses one that does not parse, names an unknown option or no GPU count.
The pod runs `python -m tracewheel.trainer.train_cli DATASET MODEL OUTPUT` (under `torchrun`,
one process per GPU, when the template asks for more than one); the output lives on the
adapters volume, so a retried or rescheduled pod resumes from the last checkpoint there, and
its progress lines land in OUTPUT/progress.jsonl for the trainer to read (k8s_runner.py).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracewheel.core.errors import ConfigError, InvalidArgument
from tracewheel.trainer.jobs import Job

MANAGED_BY = "tracewheel-trainer"  # the app.kubernetes.io/managed-by label of every training Job
JOB_ID_ANNOTATION = "tracewheel.dev/job-id"  # the training job a Job runs: how a restarted trainer adopts it
JOB_ID_LABEL = "tracewheel.dev/job-id"  # the same id as a label, to select a Job's pods
MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"


class K8sJobTemplate(BaseModel):
    """What every training Job shares; one per cluster, from the trainer's Job template file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = Field(description="The trainer image; with the `gpu` extra (bitsandbytes) for QLoRA.")
    gpus: int = Field(
        ge=0,
        description="nvidia.com/gpu per pod (required: a template that forgets it would train on a CPU node); "
        "more than 1 launches train_cli under torchrun, one process per GPU; 0 trains on the CPU.",
    )
    namespace: str = Field(default="tracewheel", description="Where the Jobs are created.")
    cpu: str = Field(default="4", description="CPU request and limit.")
    memory: str = Field(default="32Gi", description="Memory request and limit.")
    datasets_pvc: str = Field(default="tracewheel-datasets", description="The claim holding dataset builds.")
    datasets_mount: str = Field(
        default="/data/datasets", description="Where it is mounted (read-only); dataset paths must be under it."
    )
    adapters_pvc: str = Field(default="tracewheel-adapters", description="The claim adapters are trained into.")
    adapters_mount: str = Field(
        default="/data/adapters", description="Where it is mounted; the trainer's adapters_dir must be this path."
    )
    models_pvc: str = Field(default="tracewheel-models", description="The claim holding base models.")
    models_mount: str = Field(default="/data/models", description="Where it is mounted (read-only).")
    shm_size: str | None = Field(
        default=None,
        description="A memory-backed /dev/shm of this size (e.g. 8Gi): NCCL's processes under torchrun share "
        "tensors through it, and a container's default is 64Mi.",
    )
    backoff_limit: int = Field(default=2, ge=0, description="Pod retries; each resumes from the last checkpoint.")
    ttl_seconds_after_finished: int = Field(
        default=24 * 3600, ge=0, description="The Job object is garbage-collected this long after it ends."
    )
    active_deadline_seconds: int | None = Field(default=None, ge=1, description="A Job running longer fails.")
    service_account: str | None = Field(default=None, description="The pods' ServiceAccount.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment, e.g. TW_RECIPE_* overrides.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Where the pods may run.")


def load_job_template(path: Path) -> K8sJobTemplate:
    """The Job template in a YAML file of `K8sJobTemplate` options.

    Raises:
        ConfigError: the file is missing, is not YAML, is not a mapping, or an option is unknown,
            missing (`image`, `gpus`) or invalid; the message names the file and the option.
    """
    try:
        fields = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Job template {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Job template {path}: not valid YAML: {exc}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"Job template {path}: expected a mapping of K8sJobTemplate options, got {fields!r:.80}")
    try:
        return K8sJobTemplate.model_validate(fields)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ConfigError(f"Job template {path}: " + "; ".join(problems)) from None


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


def container_command(gpus: int) -> list[str]:
    """How the pod starts train_cli: one process, or one per GPU under torchrun (data parallel)."""
    if gpus > 1:
        return ["torchrun", "--standalone", f"--nproc-per-node={gpus}", "-m", "tracewheel.trainer.train_cli"]
    return ["python", "-m", "tracewheel.trainer.train_cli"]


def _trainer_args(
    job: Job, template: K8sJobTemplate, base_model_path: str | None, recipe_file: str | None
) -> list[str]:
    """The trainer command's arguments, every path one on a volume the pod mounts.

    Raises:
        InvalidArgument: a path is not on a volume the pod mounts.
    """
    dataset = _mounted(job.dataset_path, template.datasets_mount, "dataset")
    model = _mounted(base_model_path or f"{template.models_mount}/{job.base_model}", template.models_mount, "model")
    output = f"{template.adapters_mount}/{job.id}"
    args = [dataset, model, output]
    if recipe_file:
        args += ["--recipe", _mounted(recipe_file, template.adapters_mount, "recipe")]
    if job.init_adapter:
        args += ["--init-adapter", _mounted(job.init_adapter, template.adapters_mount, "warm-start adapter")]
    return args


def _pod_spec(template: K8sJobTemplate, args: list[str]) -> dict[str, Any]:
    """The trainer pod: one non-root container running `args` with the three volumes mounted."""
    volumes, mounts = zip(
        _volume("datasets", template.datasets_pvc, template.datasets_mount, read_only=True),
        _volume("models", template.models_pvc, template.models_mount, read_only=True),
        _volume("adapters", template.adapters_pvc, template.adapters_mount, read_only=False),
        strict=True,
    )
    resources = {"cpu": template.cpu, "memory": template.memory, "nvidia.com/gpu": str(template.gpus)}
    env = {"PYTHONUNBUFFERED": "1", **template.env}
    container: dict[str, Any] = {
        "name": "trainer",
        "image": template.image,
        "command": container_command(template.gpus),
        "args": args,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {"requests": resources, "limits": resources},
        "volumeMounts": list(mounts),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        # a failed container's last log lines become its terminated message: the job's error
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # retries are new pods, counted by backoffLimit
        "containers": [container],
        "volumes": list(volumes),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if template.shm_size:
        pod_spec["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": template.shm_size}})
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    if template.node_selector:
        pod_spec["nodeSelector"] = dict(template.node_selector)
    if template.service_account:
        pod_spec["serviceAccountName"] = template.service_account
    return pod_spec


def build_k8s_job(
    job: Job,
    template: K8sJobTemplate,
    *,
    base_model_path: str | None = None,
    recipe_file: str | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job manifest that trains `job` on the cluster.

    `base_model_path` is the resolved base model folder (default: `<models_mount>/<base_model>`);
    `recipe_file`, a recipe YAML on the adapters volume the pod reads with `--recipe`.

    Raises:
        InvalidArgument: the dataset, the base model, the recipe or a warm start's adapter is not
            on a volume the pod mounts.
    """
    args = _trainer_args(job, template, base_model_path, recipe_file)
    labels = {"app.kubernetes.io/name": "tracewheel-trainer", "app.kubernetes.io/managed-by": MANAGED_BY}
    labels[JOB_ID_LABEL] = job.id
    pod_spec = _pod_spec(template, args)
    spec: dict[str, Any] = {
        "backoffLimit": template.backoff_limit,
        "ttlSecondsAfterFinished": template.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if template.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = template.active_deadline_seconds
    metadata = {
        "name": k8s_job_name(job),
        "namespace": template.namespace,
        "labels": labels,
        "annotations": {JOB_ID_ANNOTATION: job.id},
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
