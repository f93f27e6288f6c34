"""A task's runs grouped by model: stored traces of this suite's task, evaluation results listed once."""

from __future__ import annotations

import httpx

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.natsserver import free_port
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.console.task_runs import (
    names_suite,
    recorded_evaluations,
    runs_by_model,
)
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore

from .conftest import TraceFactory


def _result(model: str, suite: str, *results: tuple[str, bool, str]) -> EvalResult:
    tasks = [TaskResult(task_id=t, passed=p, verdict="passed" if p else "failed", detail=f"{t} by {model}",
                        trace_id=trace) for t, p, trace in results]  # fmt: skip
    return EvalResult(model=model, suite=suite, task_results=tasks)


def test_the_shop_is_named_by_its_splits_and_a_suite_by_its_name() -> None:
    assert names_suite("heldout", "shop") and names_suite("train", "shop") and names_suite("shop:heldout", "shop")
    assert names_suite("team:heldout", "team") and names_suite("team", "team")
    assert not names_suite("heldout", "team") and not names_suite("teamwork", "team")


def test_runs_are_grouped_by_model_with_each_evaluation_once(store: TraceStore, make_trace: TraceFactory) -> None:
    store.ingest(make_trace("a-1", suite="team", task_id="t1", model="base", created_at="2026-11-01T10:00:00Z"))
    store.ingest(make_trace("a-2", suite="team", task_id="t1", model="job-1", verdict="failed",
                            created_at="2026-11-02T10:00:00Z"))  # fmt: skip
    store.ingest(make_trace("other-suite", suite="elsewhere", task_id="t1", model="base"))
    store.ingest(make_trace("other-task", suite="team", task_id="t2", model="base"))
    base = _result("base", "team:heldout", ("t1", False, "e-base"), ("t2", True, "e-base-2"))
    decisions = [
        ("job-1", _result("job-1", "team:heldout", ("t1", True, "e-job1")), base),
        ("job-2", _result("job-2", "team:heldout", ("t2", True, "e-job2")), base),  # base's cached result again
        ("job-3", _result("job-3", "shop:heldout", ("t1", True, "e-shop")), None),  # the shop's own t1
        ("job-4", None, None),  # decided before decisions kept their evaluations
    ]
    stored = store.list_traces(None, 50).traces

    groups = runs_by_model("team", "t1", stored, recorded_evaluations(decisions))

    assert [g.model for g in groups] == ["job-1", "base"]  # newest stored trace first
    job1, base_runs = groups
    assert [r.trace_id for r in job1.stored] == ["a-2"] and job1.stored[0].verdict == "failed"
    assert [(r.trace_id, r.passed, r.deployment, r.role) for r in job1.evaluations] == [
        ("e-job1", True, "job-1", "candidate")
    ]
    assert [r.trace_id for r in base_runs.stored] == ["a-1"] and base_runs.stored[0].status == "approved"
    assert [(r.trace_id, r.passed, r.detail, r.role) for r in base_runs.evaluations] == [
        ("e-base", False, "t1 by base", "compared with")
    ]
    assert (job1.passed, job1.runs, base_runs.passed, base_runs.runs) == (1, 2, 1, 2)


async def test_a_peer_that_is_down_leaves_a_notice_and_the_stored_runs(
    store: TraceStore, make_trace: TraceFactory
) -> None:
    store.ingest(make_trace("a-1", suite="team", task_id="t1", model="<b>base</b>"))
    dead = f"127.0.0.1:{free_port()}"
    peers = Peers({"agent": dead, "inference": ""}, timeout_s=5)
    app = create_app(store, None, console=ConsoleConfig(peers))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        suites = await client.get("/console/suites")
        task = await client.get("/console/suites/team/tasks/t1")
    await peers.close()
    assert suites.status_code == 503 and f"the agent at {dead} did not answer" in suites.text
    assert task.status_code == 503 and 'class="notice-peer"' in task.text
    assert "TW_DATASET_INFERENCE_ADDRESS" in task.text and f"the agent at {dead}" in task.text
    assert 'href="/traces/a-1"' in task.text and "&lt;b&gt;base&lt;/b&gt;" in task.text
