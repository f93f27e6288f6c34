"""Training jobs as Kubernetes Jobs, through the official client, against a local stand-in API server.

The stand-in (k8s_standin.py) serves the Job and pod endpoints; the tests play its controller
and kubelet. One test runs the Job's own container command for real, as a local subprocess on
the tiny model, and gets an adapter. No cluster and no GPU are involved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tracewheel.trainer.jobs import Job, JobQueue, JobState, JobStore, training_runner
from tracewheel.trainer.k8s_api import JobsApi, api_client
from tracewheel.trainer.k8s_job import K8sJobTemplate, k8s_job_name
from tracewheel.trainer.k8s_runner import RECIPE_FILE, KubernetesOptions, KubernetesTraining
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import ADAPTER, Progress
from tracewheel.trainer.train_cli import PROGRESS_FILE

from .conftest import agent_row, write_dataset
from .k8s_standin import FakeCluster, Kubelet, run_container

CLAIMS = ("tracewheel-datasets", "tracewheel-models", "tracewheel-adapters")


@pytest.fixture
def template(tmp_path: Path, tiny_model_dir: Path) -> K8sJobTemplate:
    """Volumes that are folders here, so a pod's paths are the test's paths."""
    for folder in ("datasets", "adapters"):
        (tmp_path / folder).mkdir()
    return K8sJobTemplate(
        image="tracewheel/trainer:dev",
        gpus=0,
        datasets_mount=str(tmp_path / "datasets"),
        adapters_mount=str(tmp_path / "adapters"),
        models_mount=str(tiny_model_dir.parent),
    )


class Trainer:
    """A trainer's queue whose jobs run as Jobs on the stand-in; `restart()` is a new trainer process."""

    def __init__(self, cluster: FakeCluster, template: K8sJobTemplate, recipe: Recipe, model: Path, tmp: Path) -> None:
        self.cluster, self.template, self.recipe, self.model, self.tmp = cluster, template, recipe, model, tmp
        self.options = KubernetesOptions(runner="kubernetes", k8s_watch_s=1, k8s_pending_timeout_s=0)
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(cluster.kubeconfig())
        self.api = JobsApi(api_client(kubeconfig), template.namespace)
        self.progress: list[Progress] = []
        self.restart()

    def restart(self) -> None:
        remote = KubernetesTraining(self.api, self.template, self.recipe, lambda _: self.model, self.options)
        runner = training_runner(Path(self.template.adapters_mount), self.recipe, lambda _: self.model, remote=remote)
        self.queue = JobQueue(JobStore(self.tmp / "jobs.json"), runner)
        self.queue.add_listener(lambda job, progress: progress and self.progress.append(progress))

    def submit(self, dataset: str = "ds-1") -> Job:
        path = self.template.datasets_mount + f"/{dataset}"
        if not Path(path).exists():
            write_dataset(Path(path), [agent_row(i) for i in range(4)], [agent_row(100)], version=dataset)
        return self.queue.submit(dataset, path, "tiny")


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster(claims=CLAIMS) as running:
        yield running


def trainer_on(cluster: FakeCluster, template: K8sJobTemplate, model: Path, tmp: Path, kubelet: Kubelet | None):
    cluster.kubelet = kubelet
    return Trainer(cluster, template, Recipe(max_steps=2, save_steps=1, lora_r=4, device="cpu"), model, tmp)


@pytest.mark.slow
def test_a_job_runs_its_container_command_and_the_adapter_comes_back(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, run_container)
    job = trainer.submit()

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.SUCCEEDED, done
    output = Path(template.adapters_mount) / job.id
    assert done.adapter_path == str(output / ADAPTER)
    assert (output / ADAPTER / "adapter_model.safetensors").exists()
    assert cluster.created == [k8s_job_name(job)]
    assert "max_steps: 2" in (output / RECIPE_FILE).read_text()  # the trainer's recipe reached the pod
    lines = [json.loads(line) for line in (output / PROGRESS_FILE).read_text().splitlines()]
    assert [line["progress"]["step"] for line in lines if "progress" in line][:2] == [1, 2]
    assert trainer.progress and trainer.progress[-1].step >= 1


def fail_like_the_oom_killer(cluster: FakeCluster, job: dict[str, Any]) -> None:
    name = job["metadata"]["name"]
    state = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    cluster.set_pod(name, f"{name}-0", {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": state}]})
    failed = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "backoff limit reached"}
    cluster.set_job_status(name, failed=1, conditions=[failed])


def test_a_failed_job_fails_the_training_job_with_the_pods_reason(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, fail_like_the_oom_killer)
    trainer.submit()

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.FAILED
    assert "BackoffLimitExceeded: backoff limit reached" in done.error
    assert "OOMKilled (exit code 137)" in done.error


def delete_once_running(cluster: FakeCluster, job: dict[str, Any]) -> None:
    name = job["metadata"]["name"]
    cluster.set_pod(name, f"{name}-0", {"phase": "Running"})
    cluster.set_job_status(name, active=1)
    cluster.delete_job(name, "Foreground")  # someone's kubectl delete


def test_a_job_deleted_under_the_trainer_fails_the_training_job(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, delete_once_running)
    trainer.submit()

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.FAILED
    assert "deleted outside the trainer" in done.error


def start_running(cluster: FakeCluster, job: dict[str, Any]) -> None:
    name = job["metadata"]["name"]
    cluster.set_pod(name, f"{name}-0", {"phase": "Running"})
    cluster.set_job_status(name, active=1)


def test_cancelling_deletes_the_job_with_its_pods(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, start_running)
    job = trainer.submit()
    asked: list[str] = []

    def cancel_once_running(seen: Job, progress: Progress | None) -> None:
        if seen.state == JobState.RUNNING and not asked:
            asked.append(seen.id)  # before the call: cancel() tells the listeners again
            trainer.queue.cancel(seen.id)

    trainer.queue.add_listener(cancel_once_running)

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.CANCELLED
    assert cluster.deleted == [(k8s_job_name(job), "Background")]
    assert cluster.pods == {}


def finish_with_an_adapter(cluster: FakeCluster, name: str, output: Path) -> None:
    """What the adopted Job's pod does while the trainer is away: trains, reports, ends."""
    (output / ADAPTER).mkdir(parents=True)
    (output / ADAPTER / "adapter_config.json").write_text("{}")
    progress = {"step": 2, "total_steps": 2, "loss": 1.5, "tokens_per_second": 10.0, "eta_s": 0.0}
    (output / PROGRESS_FILE).write_text(json.dumps({"progress": progress}) + "\n")
    cluster.set_job_status(name, succeeded=1, conditions=[{"type": "Complete", "status": "True"}])


def test_a_restarted_trainer_adopts_the_job_instead_of_starting_it_again(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, start_running)
    job = trainer.submit()
    trainer.queue.add_listener(lambda seen, progress: seen.state == JobState.RUNNING and trainer.queue.close())
    interrupted = trainer.queue.run_next()  # the trainer stops while its Job runs
    assert interrupted is not None and interrupted.state == JobState.RUNNING
    assert cluster.deleted == []

    trainer.restart()
    cluster.watched.clear()
    with ThreadPoolExecutor(1) as worker:
        following = worker.submit(trainer.queue.run_next)
        assert cluster.watched.wait(30), "the restarted trainer never watched its Job"
        finish_with_an_adapter(cluster, k8s_job_name(job), Path(template.adapters_mount) / job.id)
        done = following.result(timeout=60)

    assert done is not None and done.state == JobState.SUCCEEDED, done
    assert cluster.created == [k8s_job_name(job)]  # followed, not created again
    assert trainer.progress[-1].step == 2


def no_gpu_node(cluster: FakeCluster, job: dict[str, Any]) -> None:
    name = job["metadata"]["name"]
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    }
    cluster.set_pod(name, f"{name}-0", {"phase": "Pending", "conditions": [condition]})
    cluster.set_job_status(name, active=1)


def test_a_job_no_node_can_take_fails_instead_of_waiting_forever(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, no_gpu_node)
    job = trainer.submit()

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.FAILED
    assert "could not start within 0 s" in done.error and "Insufficient nvidia.com/gpu" in done.error
    assert cluster.deleted == [(k8s_job_name(job), "Background")]


def test_a_dataset_the_job_cannot_reach_fails_at_once(
    cluster: FakeCluster, template: K8sJobTemplate, tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = trainer_on(cluster, template, tiny_model_dir, tmp_path, start_running)
    elsewhere = write_dataset(tmp_path / "elsewhere", [agent_row(1)], [])
    trainer.queue.submit("ds-x", str(elsewhere), "tiny")

    done = trainer.queue.run_next()

    assert done is not None and done.state == JobState.FAILED
    assert f"dataset {elsewhere} is not under the PVC mount {template.datasets_mount}" in done.error
    assert cluster.created == []
