"""The flywheel by events on the embedded stack with the tiny model (the `--quick` profile).

1. `tracewheel demo --quick` runs traces -> build -> training -> evaluation -> deployment with
   no manual step, writes its report, and a second run redoes nothing.
2. Traces published with nothing else called lead to a build, a training job, an evaluation
   and a deployment; killing the dataset and the trainer (SIGKILL) mid-way and starting them
   again loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracewheel.cli.demo_profiles import quick_profile
from tracewheel.cli.flywheel import Flywheel
from tracewheel.cli.stack import StackInfo, Supervisor
from tracewheel.core.events import SUBJECT_DATASET_BUILT, SUBJECT_MODEL_TRAINED, connect
from tracewheel.core.nats_auth import ADMIN_USER
from tracewheel.core.settings import NatsOptions
from tracewheel.inference.testing import tiny_test_model
from tracewheel.v1 import agent_pb2, dataset_pb2, inference_pb2, trainer_pb2

from .test_cli_up import free_offset

pytestmark = pytest.mark.slow


def test_quick_demo_deploys_a_trained_adapter_and_resumes_without_redoing(tmp_path: Path) -> None:
    env = {**os.environ, "TRACEWHEEL_HOME": str(tmp_path), "COLUMNS": "200"}
    command = [sys.executable, "-m", "tracewheel.cli", "demo", "--quick", "--port-offset", str(free_offset())]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "traces -> build -> training -> evaluation -> deployment" in first.stdout

    out = tmp_path / "quick" / "demo" / "quick"
    state = json.loads((out / "state.json").read_text())
    round1 = state["round1"]
    assert round1["state"] == "SUCCEEDED" and round1["deployed"], round1
    assert round1["metrics"]["tasks"] == 2 and round1["baseline_metrics"]["model"] == state["baseline"]["model"]
    assert Path(round1["adapter_path"], "adapter_config.json").exists()
    report = tmp_path / "quick" / "reports" / "demo-quick"  # where the console lists reports
    assert (report / "rounds.png").stat().st_size > 0 and "| 1 |" in (report / "report.md").read_text()

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("(done earlier)") >= 4, second.stdout
    jobs = json.loads((tmp_path / "quick" / "trainer" / "jobs.json").read_text())
    assert len(jobs) == len([k for k in state if k.startswith("round")])  # no job was trained twice


def _wait(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def _count_events(nats: NatsOptions, subject: str) -> int:
    client, js = await connect(nats.nats_url, "test", nats)
    try:
        stream = "DATASETS" if subject == SUBJECT_DATASET_BUILT else "MODELS"
        info = await js.stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await client.close()


def test_published_traces_alone_reach_a_deployment_through_crashes(tmp_path: Path) -> None:
    profile = quick_profile(tiny_test_model())
    supervisor = Supervisor(
        tmp_path, port_offset=free_offset(), env=profile.env, sink=io.StringIO(), health_timeout_s=120
    )
    supervisor.start()
    info = StackInfo.read(tmp_path)
    assert info is not None
    fw = Flywheel(info)
    try:
        # the only call: the agent replays the train suite and publishes the traces
        published = fw.agent.CollectDemonstrations(agent_pb2.CollectDemonstrationsRequest(), timeout=120)
        assert len(published.trace_ids) == 3
        supervisor.kill("dataset")  # before its debounced build: the ingest may be half done
        supervisor.restart("dataset")

        def stored() -> list[str]:
            traces = fw.dataset.ListTraces(dataset_pb2.ListTracesRequest(page_size=100), timeout=10).traces
            return sorted(t.trace.id for t in traces)

        # a trace fetched but not acked before the kill is redelivered after JetStream's ack wait
        _wait(lambda: stored() == sorted(published.trace_ids), 120, "every published trace in the store")

        def running_job() -> trainer_pb2.Job | None:
            jobs = fw.trainer.ListJobs(trainer_pb2.ListJobsRequest(), timeout=10).jobs
            return next((j for j in jobs if j.state == trainer_pb2.JOB_STATE_RUNNING), None)

        job = _wait(running_job, 120, "a training job started by the build event")
        supervisor.kill("trainer")  # mid-training
        supervisor.restart("trainer")
        result = fw.wait_round(set(), timeout_s=240)

        # Nothing lost, nothing twice. Traces the dataset had not acked before the kill come back
        # after JetStream's ack wait, so they may make a second build (and job): each build has
        # its own dataset version, each job its own build, the last one holds every trace.
        assert stored() == sorted(published.trace_ids)
        builds = fw.dataset.ListDatasets(dataset_pb2.ListDatasetsRequest(), timeout=10).datasets
        newest = next(b for b in builds if b.version == result.dataset_version)  # the last job's build
        jobs = fw.trainer.ListJobs(trainer_pb2.ListJobsRequest(), timeout=10).jobs
        story = ([(b.version, len(b.trace_ids)) for b in builds], [(j.id, j.dataset_version, j.state) for j in jobs])
        assert sorted(newest.trace_ids) == sorted(published.trace_ids), (result, story)
        jobs = fw.trainer.ListJobs(trainer_pb2.ListJobsRequest(), timeout=10).jobs
        assert sorted(j.dataset_version for j in jobs) == sorted(b.version for b in builds)
        by_id = {j.id: j for j in jobs}
        assert by_id[job.id].state == trainer_pb2.JOB_STATE_SUCCEEDED  # the killed job resumed and finished
        assert result.state == "SUCCEEDED" and result.deployed
        assert result.metrics["model"] == result.job_id and result.metrics["tasks"] == 2
        succeeded = sum(j.state == trainer_pb2.JOB_STATE_SUCCEEDED for j in jobs)
        admin = supervisor.nats.credentials(ADMIN_USER)  # the stack's NATS admits its users only
        assert asyncio.run(_count_events(admin, SUBJECT_DATASET_BUILT)) == len(builds)
        assert asyncio.run(_count_events(admin, SUBJECT_MODEL_TRAINED)) == succeeded
        served = fw.inference.ListModels(inference_pb2.ListModelsRequest(), timeout=10).models
        assert {m.name: m.target for m in served}["agent"] == result.job_id
    finally:
        fw.close()
        supervisor.stop()
