"""Training as Kubernetes Jobs: submit, follow with a watch, stream progress, cancel, adopt after a restart.

`KubernetesTraining` is the job queue's remote training step (jobs.training_runner): it creates
the job's batch/v1 Job from the template (k8s_job.py), or adopts the one a previous trainer
created (found by the managed-by label and the job id annotation), and follows it until it
ends. Between watch events it reads OUTPUT/progress.jsonl, which the Job's train_cli writes on
the shared adapters volume, and forwards the newest progress. Cancelling deletes the Job (its
pods in the background); a trainer that stops leaves it running for the next start to adopt.
A Job that fails fails the training job with the pods' reason; one deleted under us, or stuck
pending (no GPU node, a missing volume or image) past `k8s_pending_timeout_s`, too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from tracewheel.core.errors import Unavailable
from tracewheel.core.files import write_text_atomically
from tracewheel.trainer.isolated import TrainingFailed
from tracewheel.trainer.jobs import Job, ShouldStop, StopReason
from tracewheel.trainer.k8s_api import JobsApi
from tracewheel.trainer.k8s_job import K8sJobTemplate, build_k8s_job
from tracewheel.trainer.k8s_status import ClusterPhase, Observation, PendingClock, observe
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, Progress, TrainingCancelled
from tracewheel.trainer.train_cli import PROGRESS_FILE

log = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"  # the trainer's recipe, written beside the job's output for its pod


class KubernetesOptions(BaseModel):
    """Where training runs; the trainer's settings inherit these (TW_TRAINER_RUNNER, ...)."""

    runner: Literal["local", "kubernetes"] = Field(
        default="local",
        description="local: train in the service's pod or process; kubernetes: one batch/v1 Job per training "
        "job, created and followed through the Kubernetes API (needs job_template).",
    )
    job_template: Path | None = Field(
        default=None,
        description="kubernetes runner: the Job template, a YAML file of K8sJobTemplate options (image, gpus, "
        "volumes; the trainer-job-template ConfigMap).",
    )
    kubeconfig: Path | None = Field(
        default=None, description="kubernetes runner: a kubeconfig file; default: the pod's service account."
    )
    k8s_pending_timeout_s: float = Field(
        default=600.0,
        ge=0,
        description="kubernetes runner: a Job whose pod cannot start for this long (no node with the GPUs, a "
        "missing volume or image) is deleted and its training job fails with the reason.",
    )
    k8s_watch_s: int = Field(
        default=5,
        ge=1,
        description="kubernetes runner: how long one watch waits for a change before progress and cancel "
        "requests are looked at again.",
    )


class ProgressTail:
    """Reads the lines train_cli appends to OUTPUT/progress.jsonl, from where it last stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.error = ""  # the last {"error": ...} line: why train_cli gave up

    def newest_progress(self) -> Progress | None:
        """The newest progress report written since the last call (older ones are skipped)."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return None
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
        self._offset += len(complete)
        newest = None
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "progress" in message:
                newest = Progress(**message["progress"])
            elif "error" in message:
                self.error = str(message["error"])
        return newest


def recipe_yaml(recipe: Recipe) -> str:
    """The recipe's explicit options (file and TW_RECIPE_*), for the Job's train_cli --recipe."""
    return yaml.safe_dump(recipe.model_dump(mode="json", exclude_unset=True), sort_keys=True)


class KubernetesTraining:
    """The remote training step of `training_runner` that runs each job as a Kubernetes Job."""

    def __init__(
        self,
        api: JobsApi,
        template: K8sJobTemplate,
        recipe: Recipe,
        resolve_base_model: Callable[[str], Path],
        options: KubernetesOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.template = template
        self.recipe = recipe
        self.resolve_base_model = resolve_base_model
        self.options = options
        self.clock = clock

    def manifest(self, job: Job, job_dir: Path) -> dict[str, Any]:
        """The Job for `job`, with the trainer's recipe written where its pod reads it.

        Raises:
            InvalidArgument: a path the pod needs is not on a volume it mounts.
        """
        recipe_file = job_dir / RECIPE_FILE
        base_model = str(self.resolve_base_model(job.base_model))
        manifest = build_k8s_job(job, self.template, base_model_path=base_model, recipe_file=str(recipe_file))
        job_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(recipe_file, recipe_yaml(self.recipe))
        return manifest

    def __call__(
        self, job: Job, job_dir: Path, on_progress: Callable[[Progress], None], should_stop: ShouldStop
    ) -> Path:
        """Runs (or adopts) the job's Job and follows it to the end; returns the adapter folder.

        Raises:
            TrainingFailed: the Job failed (with the pods' reason), was deleted under us, or could not start.
            TrainingCancelled: the job was cancelled (the Job is deleted) or the trainer stops (it is kept).
            InvalidArgument: a path the pod needs is not on a volume it mounts.
            Unavailable: the API server refused to create the Job.
        """
        existing = self.api.find(job.id)
        if existing is not None:
            log.info("job %s: adopting its Job %s", job.id, existing["metadata"]["name"])
            current: dict[str, Any] | None = existing
        else:
            current = self.api.create(self.manifest(job, job_dir))
            log.info("job %s: created Job %s", job.id, current["metadata"]["name"])
        return self._follow(job, current, job_dir, on_progress, should_stop)

    def _follow(
        self,
        job: Job,
        current: dict[str, Any] | None,
        job_dir: Path,
        on_progress: Callable[[Progress], None],
        should_stop: ShouldStop,
    ) -> Path:
        assert current is not None
        name = current["metadata"]["name"]
        tail = ProgressTail(job_dir / PROGRESS_FILE)
        pending = PendingClock(self.options.k8s_pending_timeout_s)
        phase: ClusterPhase | None = None
        while True:
            observation = self._observe(job, current)
            if observation.phase != phase:
                phase = observation.phase
                log.info("job %s: Job %s is %s %s", job.id, name, phase, observation.reason)
            if (progress := tail.newest_progress()) is not None:
                on_progress(progress)
            self._settle(name, observation, pending, tail)
            if observation.phase == ClusterPhase.SUCCEEDED:
                return self._adapter(name, job_dir)
            self._stop_if_asked(name, should_stop())
            current = self._next_change(name, current)

    def _observe(self, job: Job, current: dict[str, Any] | None) -> Observation:
        try:
            pods = self.api.pods(job.id) if current is not None else []
        except Unavailable as exc:
            log.warning("job %s: %s", job.id, exc)
            pods = []
        return observe(current, pods)

    def _settle(self, name: str, observation: Observation, pending: PendingClock, tail: ProgressTail) -> None:
        """Raises TrainingFailed for a Job that failed, vanished or waited too long to start."""
        error = f"; train_cli: {tail.error}" if tail.error else ""
        if observation.phase == ClusterPhase.FAILED:
            raise TrainingFailed(f"the Job {name} failed: {observation.reason}{error}")
        if observation.phase == ClusterPhase.DELETED:
            raise TrainingFailed(f"the Job {name} is gone: {observation.reason}{error}")
        if pending.expired(observation, self.clock()):
            self.api.delete(name)
            raise TrainingFailed(
                f"the Job {name} could not start within {self.options.k8s_pending_timeout_s:g} s "
                f"(TW_TRAINER_K8S_PENDING_TIMEOUT_S) and was deleted: {observation.reason}"
            )

    def _stop_if_asked(self, name: str, reason: StopReason | None) -> None:
        if reason == StopReason.CANCEL:
            self.api.delete(name)
            raise TrainingCancelled(f"cancelled: the Job {name} was deleted")
        if reason == StopReason.SHUTDOWN:
            raise TrainingCancelled(f"the trainer stops; the Job {name} keeps running and is adopted at the next start")

    def _next_change(self, name: str, current: dict[str, Any] | None) -> dict[str, Any] | None:
        """The Job after its next change, or as it is after a watch that saw none; None once deleted."""
        version = (current or {}).get("metadata", {}).get("resourceVersion", "")
        try:
            for kind, changed in self.api.watch(name, version, self.options.k8s_watch_s):
                if kind == "DELETED":
                    return None
                if kind == "ERROR":  # e.g. 410 Gone: the version is too old; read the Job afresh
                    return self.api.read(name)
                return changed
        except Unavailable as exc:  # the Job runs on without us: look again after a pause
            log.warning("%s; retrying in %d s", exc, self.options.k8s_watch_s)
            time.sleep(self.options.k8s_watch_s)
        return current

    def _adapter(self, name: str, job_dir: Path) -> Path:
        adapter = job_dir / ADAPTER
        if not (adapter / "adapter_config.json").exists():
            raise TrainingFailed(
                f"the Job {name} succeeded but {adapter} holds no adapter: the trainer's adapters_dir must be "
                f"the volume the Job writes to ({self.template.adapters_pvc} at {self.template.adapters_mount})"
            )
        return adapter
