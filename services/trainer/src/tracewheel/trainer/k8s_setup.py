"""Starting the Kubernetes runner: every check that would otherwise fail a job later, made at start-up.

A template that does not parse or names no GPU count, a recipe that needs CUDA with a template
that gives no GPU, a trainer whose adapters folder is not the Jobs' adapters volume, a volume
the trainer does not mount, a claim that does not exist, an API server that cannot be reached
or refuses to list Jobs: each is a `ConfigError` naming what to fix, before the service serves.
Then the Jobs a previous trainer started are matched to the queue's jobs: a RUNNING job's Job
is adopted when the queue resumes it; a Job still active for a job that has ended is deleted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

from tracewheel.core.errors import ConfigError, TracewheelError
from tracewheel.trainer.config import TrainerSettings
from tracewheel.trainer.jobs import FINAL_STATES, Job
from tracewheel.trainer.k8s_api import JobsApi, api_client
from tracewheel.trainer.k8s_job import JOB_ID_ANNOTATION, K8sJobTemplate, load_job_template
from tracewheel.trainer.k8s_runner import KubernetesTraining
from tracewheel.trainer.recipe import Recipe

log = logging.getLogger(__name__)


def check_storage(template: K8sJobTemplate, adapters_dir: Path, base_model_dir: Path | None) -> None:
    """The trainer and its Jobs see the same datasets and adapters at the same paths.

    Raises:
        ConfigError: they do not, or the trainer cannot write the adapters volume.
    """
    if PurePosixPath(adapters_dir) != PurePosixPath(template.adapters_mount):
        raise ConfigError(
            f"TW_TRAINER_ADAPTERS_DIR is {adapters_dir}, but the Jobs write adapters to the template's "
            f"adapters_mount {template.adapters_mount}: mount {template.adapters_pvc} there in the trainer too"
        )
    shared = {template.adapters_mount: template.adapters_pvc, template.datasets_mount: template.datasets_pvc}
    for mount, claim in shared.items():
        if not Path(mount).is_dir():
            raise ConfigError(f"{mount} is not a folder here: mount the volume {claim} at {mount} in the trainer too")
    if not os.access(template.adapters_mount, os.W_OK):
        raise ConfigError(f"{template.adapters_mount} is not writable by the trainer (uid {os.getuid()})")
    if base_model_dir is not None and not PurePosixPath(base_model_dir).is_relative_to(template.models_mount):
        raise ConfigError(
            f"TW_TRAINER_BASE_MODEL_DIR {base_model_dir} is not under the template's models_mount "
            f"{template.models_mount}: the Job's pod could not read it"
        )


def check_gpus(template: K8sJobTemplate, recipe: Recipe) -> None:
    """Raises ConfigError when the recipe needs CUDA and the template gives the pod no GPU."""
    needs_cuda = recipe.device == "cuda" or recipe.load_in_4bit is True
    if needs_cuda and template.gpus == 0:
        raise ConfigError(
            "the recipe trains on CUDA (device=cuda or load_in_4bit=true) but the Job template asks for "
            "gpus: 0; give each Job a GPU or train on the CPU"
        )


def check_cluster(api: JobsApi, template: K8sJobTemplate) -> list[dict[str, Any]]:
    """The managed Jobs in the namespace, once the API server answered and the claims exist.

    Raises:
        ConfigError: the API server cannot be reached, refuses to list Jobs, or a claim is missing.
    """
    try:
        managed = api.list_managed()
        missing = api.missing_claims([template.datasets_pvc, template.models_pvc, template.adapters_pvc])
    except TracewheelError as exc:
        raise ConfigError(f"the Kubernetes runner cannot start: {exc}") from None
    if missing:
        raise ConfigError(
            f"PersistentVolumeClaim(s) {', '.join(missing)} named in the Job template do not exist in "
            f"namespace {template.namespace}"
        )
    return managed


def reconcile(api: JobsApi, managed: list[dict[str, Any]], jobs: list[Job]) -> None:
    """Logs the Jobs a RUNNING job will adopt; deletes active Jobs of jobs that have ended."""
    by_id = {job.id: job for job in jobs}
    for item in managed:
        name = item["metadata"]["name"]
        job = by_id.get((item["metadata"].get("annotations") or {}).get(JOB_ID_ANNOTATION, ""))
        if job is None:
            log.warning("Job %s belongs to no job of this trainer; left alone", name)
        elif job.state not in FINAL_STATES:
            log.info("Job %s runs job %s: it is adopted, not started again", name, job.id)
        elif (item.get("status") or {}).get("active"):
            log.info("Job %s still runs job %s, which is %s: deleting it", name, job.id, job.state)
            api.delete(name)


def start_kubernetes_training(settings: TrainerSettings, recipe: Recipe, jobs: list[Job]) -> KubernetesTraining:
    """The remote training step, after every start-up check (see the module docstring).

    Raises:
        ConfigError: a check failed; the message says what to fix.
    """
    if settings.job_template is None:
        raise ConfigError("TW_TRAINER_RUNNER=kubernetes needs TW_TRAINER_JOB_TEMPLATE (the Job template file)")
    template = load_job_template(settings.job_template)
    check_gpus(template, recipe)
    check_storage(template, settings.resolved_adapters_dir(), settings.base_model_dir)
    api = JobsApi(api_client(settings.kubeconfig), template.namespace)
    reconcile(api, check_cluster(api, template), jobs)
    return KubernetesTraining(api, template, recipe, settings.resolve_base_model, settings)
