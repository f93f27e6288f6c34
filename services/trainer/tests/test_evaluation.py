"""A job's evaluation on disk (`eval.json`, `jobs.json`) and on the wire: the same EvalResult read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.core.files import write_json_atomically
from tracewheel.trainer.convert import job_to_proto
from tracewheel.trainer.evaluation import EVAL_FILE, Evaluation, read_evaluation
from tracewheel.trainer.events import model_trained
from tracewheel.trainer.jobs import Job, JobQueue, JobState, JobStore, RunOutput
from tracewheel.trainer.train import Progress

ADAPTER = EvalResult(
    model="agent-1",
    suite="heldout",
    task_results=[
        TaskResult(task_id="t1", passed=True, template="price_lookup"),
        TaskResult(task_id="t2", passed=False),
    ],
)
BASE = EvalResult(
    model="base", suite="heldout", task_results=[TaskResult(task_id=t, passed=False) for t in ("t1", "t2")]
)


def test_eval_json_reads_back_the_same_results(tmp_path: Path) -> None:
    assert read_evaluation(tmp_path) is None
    evaluation = Evaluation(metrics=ADAPTER, baseline_metrics=BASE)
    write_json_atomically(tmp_path / EVAL_FILE, evaluation.model_dump(mode="json"))
    assert read_evaluation(tmp_path) == evaluation


def test_an_evaluated_job_keeps_its_results_through_jobs_json_and_its_messages(tmp_path: Path) -> None:
    def evaluated(job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> RunOutput:
        return RunOutput("/adapters/a/adapter", ADAPTER, BASE)

    store = JobStore(tmp_path / "jobs.json")
    queue = JobQueue(store, evaluated)
    job = queue.submit("v1", "/data/v1", "base")
    queue.run_next()

    (read,) = store.load().values()
    assert read.id == job.id and read.state == JobState.SUCCEEDED
    assert read.metrics == ADAPTER and read.baseline_metrics == BASE
    assert json.loads(store.path.read_text())[0]["metrics"]["task_results"][0]["task_id"] == "t1"
    for message in (job_to_proto(read), model_trained(read)):
        assert eval_result_from_proto(message.metrics) == ADAPTER
        assert eval_result_from_proto(message.baseline_metrics).passed_tasks == ()


def test_jobs_written_before_eval_results_are_read(tmp_path: Path) -> None:
    older = {"id": "j1", "dataset_version": "v1", "dataset_path": "/d", "base_model": "base", "state": "SUCCEEDED"}
    figures = {"model": "j1", "suite": "heldout", "tasks": 4, "success_rate": 0.5, "passed_task_ids": ["a", "b"]}
    rows = [older | {"id": "j0", "metrics": {}, "baseline_metrics": {}}, older | {"metrics": figures}]
    (tmp_path / "jobs.json").write_text(json.dumps(rows))
    jobs = JobStore(tmp_path / "jobs.json").load()
    assert jobs["j0"].metrics is None and jobs["j0"].baseline_metrics is None  # not evaluated
    assert jobs["j1"].metrics == EvalResult(model="j1", suite="heldout", tasks=4, success_rate=0.5)
    assert jobs["j1"].metrics.passed_tasks is None and not job_to_proto(jobs["j0"]).HasField("metrics")
