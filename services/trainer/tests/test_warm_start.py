"""Warm starts: which adapter a job starts from, kept on the job, and training carried on from its weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tracewheel.trainer.data import load_training_data
from tracewheel.trainer.jobs import Job, JobQueue, JobState, JobStore
from tracewheel.trainer.recipe import Recipe
from tracewheel.trainer.train import Progress, train
from tracewheel.trainer.trained_rows import read_trained_rows, row_keys, write_trained_rows
from tracewheel.trainer.warm_start import DeploymentLog, warm_start_adapter

from .conftest import agent_row, write_dataset


def trained_job(tmp_path: Path, job_id: str, base_model: str = "base") -> Job:
    adapter = tmp_path / job_id / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    return Job(job_id, "v1", "/data/v1", base_model, JobState.SUCCEEDED, adapter_path=str(adapter))


def test_the_deployment_log_keeps_the_last_deployment_of_each_alias(tmp_path: Path) -> None:
    log = DeploymentLog(tmp_path / "state" / "deployments.json")
    assert log.adapter_for("agent") == ""

    log.record("agent", "agent-1")
    log.record("other", "agent-2")
    log.record("agent", "agent-3")

    again = DeploymentLog(tmp_path / "state" / "deployments.json")  # read back from disk
    assert again.adapter_for("agent") == "agent-3" and again.adapter_for("other") == "agent-2"
    again.record("agent", "")  # a rollback to the base model
    assert DeploymentLog(again.path).adapter_for("agent") == ""


def test_a_job_starts_from_the_deployed_adapter_only_when_this_trainer_made_it_for_its_base(tmp_path: Path) -> None:
    new = Job("agent-new", "v2", "/data/v2", "base")
    ours, other_base = trained_job(tmp_path, "agent-1"), trained_job(tmp_path, "agent-2", base_model="bigger")
    gone = Job("agent-3", "v3", "/data/v3", "base", JobState.SUCCEEDED, adapter_path=str(tmp_path / "nowhere"))
    failed = Job("agent-4", "v4", "/data/v4", "base", JobState.FAILED)
    jobs = [ours, other_base, gone, failed]

    assert warm_start_adapter(new, "agent-1", jobs) == ours.adapter_path
    assert warm_start_adapter(new, "", jobs) == ""  # the alias serves the base model
    assert warm_start_adapter(new, "loaded-by-hand", jobs) == ""
    assert warm_start_adapter(new, "agent-2", jobs) == ""  # trained on another base model
    assert warm_start_adapter(new, "agent-3", jobs) == ""  # its files are gone
    assert warm_start_adapter(new, "agent-4", jobs) == ""  # no adapter


def test_the_queue_decides_the_start_once_and_a_resumed_job_keeps_it(tmp_path: Path) -> None:
    started_from: list[str] = []
    deployed = ["/adapters/agent-1/adapter"]

    def crash(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        started_from.append(job.init_adapter)
        raise KeyboardInterrupt  # the process dies mid-training: the job stays RUNNING on disk

    def succeed(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> str:
        started_from.append(job.init_adapter)
        return f"/adapters/{job.id}/adapter"

    store = JobStore(tmp_path / "jobs.json")
    queue = JobQueue(store, crash, warm_start=lambda job, jobs: deployed[0])
    job = queue.submit("v2", "/data/v2", "base")
    with pytest.raises(KeyboardInterrupt):
        queue.run_next()
    assert store.load()[job.id].init_adapter == "/adapters/agent-1/adapter"

    deployed[0] = "/adapters/agent-9/adapter"  # deployed since: the resumed job does not change course
    done = JobQueue(store, succeed, warm_start=lambda job, jobs: deployed[0]).run_next()

    assert done is not None and done.state == JobState.SUCCEEDED
    assert started_from == ["/adapters/agent-1/adapter", "/adapters/agent-1/adapter"]
    assert done.init_adapter == "/adapters/agent-1/adapter"


def _lora_weights(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_warm_training_carries_on_from_the_adapters_weights_for_warm_start_epochs(
    tiny_model_dir: Path, dataset_dir: Path, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    first = train(dataset_dir, tiny_model_dir, tmp_path / "first", tiny_recipe).adapter_dir
    # a warm learning rate too small to move anything: what comes out is what the run started from
    warm_only = {"max_steps": -1, "num_train_epochs": 3, "warm_start_epochs": 1, "warm_start_learning_rate": 1e-12}
    still = tiny_recipe.model_copy(update=warm_only | {"eval": False})

    warm = train(dataset_dir, tiny_model_dir, tmp_path / "warm", still, init_adapter=first)
    cold = train(dataset_dir, tiny_model_dir, tmp_path / "cold", still.model_copy(update={"learning_rate": 1e-12}))

    assert warm.global_step == 2  # one epoch of 8 rows, 4 per step (warm_start_epochs), not three
    before, after, fresh = _lora_weights(first), _lora_weights(warm.adapter_dir), _lora_weights(cold.adapter_dir)
    assert before.keys() == after.keys()
    lora_b = [name for name in before if "lora_B" in name]
    assert lora_b and all(before[name].abs().max() > 0 for name in lora_b)  # the first run moved B off zero
    assert all((after[name] - before[name]).abs().max() < 1e-6 for name in before)
    assert cold.global_step == 6  # a cold start: num_train_epochs
    assert all(fresh[name].abs().max() < 1e-9 for name in lora_b)  # a cold start begins at B = 0


def test_a_warm_start_on_new_rows_trains_only_those_and_a_replayed_sample(
    tiny_model_dir: Path, tmp_path: Path, tiny_recipe: Recipe
) -> None:
    recipe = tiny_recipe.model_copy(
        update={"max_steps": -1, "num_train_epochs": 1, "gradient_accumulation_steps": 1, "eval": False}
    )
    round1 = write_dataset(tmp_path / "ds-1", [agent_row(i) for i in range(6)], [])
    round2 = write_dataset(tmp_path / "ds-2", [agent_row(i) for i in range(8)], [], version="ds-2")
    first = train(round1, tiny_model_dir, tmp_path / "first", recipe)
    seen_first = read_trained_rows(first.adapter_dir)
    assert first.global_step == 6 and seen_first is not None and len(seen_first) == 6

    warm = recipe.model_copy(update={"warm_start_epochs": 1, "warm_start_rows": "new", "warm_start_replay": 1})
    second = train(round2, tiny_model_dir, tmp_path / "second", warm, init_adapter=first.adapter_dir)
    assert second.global_step == 3 and second.train_rows == 3  # rows 6 and 7, and one of the six seen
    seen_second = read_trained_rows(second.adapter_dir)
    assert seen_second is not None and len(seen_second) == 8 and seen_first < seen_second  # cumulative

    everything = warm.model_copy(update={"warm_start_rows": "all"})
    assert train(round2, tiny_model_dir, tmp_path / "all", everything, init_adapter=first.adapter_dir).global_step == 8


def test_a_job_starts_cold_when_its_dataset_lost_rows_the_deployed_adapter_was_trained_on(tmp_path: Path) -> None:
    first = write_dataset(tmp_path / "ds-1", [agent_row(i) for i in range(4)], [])
    grown = write_dataset(tmp_path / "ds-2", [agent_row(i) for i in range(6)], [], version="ds-2")
    curated = write_dataset(tmp_path / "ds-3", [agent_row(i) for i in (0, 1, 3, 4, 5)], [], version="ds-3")
    deployed = trained_job(tmp_path, "agent-1")
    write_trained_rows(Path(deployed.adapter_path), row_keys(load_training_data(first).train))

    def job(dataset: Path) -> Job:
        return Job(f"agent-{dataset.name}", dataset.name, str(dataset), "base")

    assert warm_start_adapter(job(first), "agent-1", [deployed]) == deployed.adapter_path
    assert warm_start_adapter(job(grown), "agent-1", [deployed]) == deployed.adapter_path
    assert warm_start_adapter(job(curated), "agent-1", [deployed]) == ""  # row 2 was removed: cold
    assert warm_start_adapter(job(tmp_path / "missing"), "agent-1", [deployed]) == ""
