"""Rounds: builds joined to jobs, evaluations and deployment decisions (pure), and the page without peers."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tracewheel.core.http_security import HttpSecurity
from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.config import DatasetSettings
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.console.live import SharedLook, changes
from tracewheel.dataset.console.rounds import JobProgress, digest, join_rounds
from tracewheel.dataset.http_api import OPEN_PATHS, create_app
from tracewheel.dataset.records import BuildRecord
from tracewheel.dataset.signin import SIGN_IN_PATH
from tracewheel.dataset.store import TraceStore
from tracewheel.v1 import evaluation_pb2, events_pb2, inference_pb2, trainer_pb2

from .conftest import TraceFactory

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def build(version: str, hours: int, train_rows: int = 8) -> BuildRecord:
    return BuildRecord(
        version=version,
        selection_sha256="0" * 64,
        trace_revisions={},
        built_at=T0 + timedelta(hours=hours),
        train_rows=train_rows,
        eval_rows=2,
    )


def job(job_id: str, version: str, state: int, hours: int, adapter: float | None = None, base: float | None = None):  # type: ignore[no-untyped-def]
    message = trainer_pb2.Job(id=job_id, dataset_version=version, state=state, eval_suite="shop:heldout")
    message.created_at.FromDatetime(T0 + timedelta(hours=hours, minutes=1))
    message.updated_at.FromDatetime(T0 + timedelta(hours=hours, minutes=9))
    if adapter is not None:
        message.metrics.CopyFrom(evaluation_pb2.EvalResult(model=job_id, suite="shop:heldout", success_rate=adapter))
    if base is not None:
        message.baseline_metrics.CopyFrom(evaluation_pb2.EvalResult(model="tiny-base", success_rate=base))
    return message


def decision(adapter: str, deployed: bool, previous: str, compared: float) -> inference_pb2.Deployment:
    return inference_pb2.Deployment(
        adapter_name=adapter,
        deployed=deployed,
        alias="agent",
        previous_target=previous,
        reason="gained 0.25 over the deployed model" if deployed else "no gain over the deployed model",
        compared_with=evaluation_pb2.EvalResult(model=previous, success_rate=compared),
    )


def test_a_full_loop_joins_into_rounds_newest_first_with_the_base_model_as_round_0() -> None:
    builds = [build("ds-2", 2), build("ds-1", 1), build("ds-3", 3)]
    jobs = [
        job("agent-1", "ds-1", trainer_pb2.JOB_STATE_SUCCEEDED, 1, adapter=0.5, base=0.25),
        job("agent-2", "ds-2", trainer_pb2.JOB_STATE_SUCCEEDED, 2, adapter=0.5),
        job("agent-3", "ds-3", trainer_pb2.JOB_STATE_RUNNING, 3),
    ]
    decisions = [decision("agent-1", True, "tiny-base", 0.25), decision("agent-2", False, "agent-1", 0.5)]
    progress = {
        "agent-3": events_pb2.TrainingProgress(job_id="agent-3", step=3, total_steps=10, loss=1.5, phase="training")
    }

    timeline = join_rounds(builds, jobs, decisions, progress)

    assert [(r.number, r.version, r.job_id) for r in timeline.rounds] == [
        (3, "ds-3", "agent-3"),
        (2, "ds-2", "agent-2"),
        (1, "ds-1", "agent-1"),
        (0, "", ""),
    ]
    third, second, first, base = timeline.rounds
    assert base.compared_model == "tiny-base" and base.compared_success == 0.25
    assert (first.success, first.compared_model, first.compared_success, first.deployed) == (
        0.5,
        "tiny-base",
        0.25,
        True,
    )
    assert first.train_rows == 8 and first.built_at == T0 + timedelta(hours=1) and first.suite == "shop:heldout"
    assert first.job_created_at == T0 + timedelta(hours=1, minutes=1) and not first.unfinished
    assert (second.compared_model, second.compared_success, second.deployed) == ("agent-1", 0.5, False)
    assert "no gain" in second.gate_reason
    assert third.unfinished and third.progress == JobProgress(3, 10, 1.5, "training")
    assert third.progress.summary == "step 3/10, loss 1.500" and third.success is None and third.deployed is None
    assert timeline.success_points() == ([(1.0, 0.5), (2.0, 0.5)], [(0.0, 0.25), (1.0, 0.25), (2.0, 0.5)])


def test_builds_without_jobs_failed_jobs_and_missing_peers_are_rounds_too() -> None:
    builds = [build("ds-1", 1), build("ds-2", 2)]
    failed = job("agent-1", "ds-1", trainer_pb2.JOB_STATE_FAILED, 1)
    failed.error = "RuntimeError: out of memory"

    timeline = join_rounds(builds, [failed], None, notices=["the inference service did not answer"])

    second, first, base = timeline.rounds
    assert (second.version, second.job_id, second.job_state) == ("ds-2", "", "")
    assert (first.job_state, first.job_error, first.deployed) == ("failed", "RuntimeError: out of memory", None)
    assert base.compared_success is None and timeline.notices == ["the inference service did not answer"]
    only_builds = join_rounds(builds, None, None)
    assert [r.version for r in only_builds.rounds] == ["ds-2", "ds-1", ""]
    assert join_rounds([], None, None).rounds == []  # nothing yet: no round 0 either
    assert JobProgress(0, 0, math.nan, "evaluating").summary == "evaluating"
    assert JobProgress(1, 4, math.nan, "training").summary == "step 1/4"


def test_jobs_and_decisions_outside_the_store_are_rounds_and_round_0_falls_back_to_a_decision() -> None:
    elsewhere = job("agent-9", "ds-elsewhere", trainer_pb2.JOB_STATE_SUCCEEDED, 5, adapter=0.75)
    orphan = decision("hand-made", True, "tiny-base", 0.125)

    timeline = join_rounds([build("ds-1", 1)], [elsewhere], [orphan])

    assert [(r.number, r.version, r.job_id, r.train_rows) for r in timeline.rounds] == [
        (3, "", "hand-made", None),
        (2, "ds-elsewhere", "agent-9", None),
        (1, "ds-1", "", 8),
        (0, "", "", None),
    ]
    assert timeline.rounds[0].deployed and timeline.rounds[0].job_state == ""
    assert (timeline.rounds[-1].compared_model, timeline.rounds[-1].compared_success) == ("tiny-base", 0.125)


def test_the_digest_moves_with_builds_jobs_progress_and_decisions_only() -> None:
    builds = [build("ds-1", 1)]
    running = job("agent-1", "ds-1", trainer_pb2.JOB_STATE_RUNNING, 1)
    step = {"agent-1": events_pb2.TrainingProgress(job_id="agent-1", step=1, total_steps=4)}
    first = digest(builds, [running], [], step)
    assert first == digest(list(builds), [running], [], dict(step))
    later = {"agent-1": events_pb2.TrainingProgress(job_id="agent-1", step=2, total_steps=4)}
    seen = {
        first,
        digest(builds, [running], [], later),
        digest([*builds, build("ds-2", 2)], [running], [], step),
        digest(builds, [running], [decision("agent-1", True, "base", 0.1)], step),
        digest(builds, None, [], step),
        digest(builds, [running], [], step, ["the trainer did not answer"]),
    }
    assert len(seen) == 6


@pytest.fixture
async def client(store: TraceStore, make_trace: TraceFactory) -> AsyncIterator[httpx.AsyncClient]:
    store.ingest(make_trace("run-1"))
    store.record_build("ds-<script>alert(1)</script>", ["run-1"], train_rows=3, eval_rows=1)
    unreachable = Peers({"trainer": "127.0.0.1:1"}, timeout_s=2.0)  # nothing listens on port 1
    app = create_app(store, None, None, console=ConsoleConfig(unreachable))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test") as opened:
        yield opened
    await unreachable.close()


async def test_the_page_lists_builds_with_notices_when_peers_are_missing(client: httpx.AsyncClient) -> None:
    page = await client.get("/console")
    assert page.status_code == 503
    assert "ds-&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "127.0.0.1:1" in page.text and "TW_DATASET_INFERENCE_ADDRESS" in page.text
    assert 'data-live="/console/fragment/rounds"' in page.text and 'aria-current="page">Rounds' in page.text
    fragment = await client.get("/console/fragment/rounds")
    assert fragment.status_code == 200 and "<html" not in fragment.text and "3 train / 1 eval rows" in fragment.text


async def test_the_event_stream_says_changed_at_once_then_on_changes_and_ends_when_stopping() -> None:
    import threading

    values = iter(["a", "a", "b"])
    stopping = threading.Event()

    async def fingerprint() -> str:
        value = next(values, "b")
        if value == "b":
            stopping.set()  # the service stops after the third look
        return value

    events = [event async for event in changes(fingerprint, stopping, interval_s=0.01)]
    assert [(e.event, e.data) for e in events] == [("changed", "a"), ("changed", "b")]
    idle = threading.Event()
    stream = changes(fingerprint, idle, interval_s=60)
    assert (await anext(stream)).event == "changed"
    waiting = asyncio.ensure_future(anext(stream))
    idle.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, timeout=5)  # not after the 60 s interval


async def test_the_event_stream_needs_the_token_says_changed_and_ends_when_the_service_stops(
    store: TraceStore, tmp_path: Path
) -> None:
    token = "console-test-token"
    settings = DatasetSettings(auth_token=token, TRACEWHEEL_HOME=tmp_path)
    security = HttpSecurity.from_settings(
        settings.auth_token, settings, "127.0.0.1", "TW_DATASET_", open_paths=OPEN_PATHS, sign_in_path=SIGN_IN_PATH
    )
    config = ConsoleConfig()
    server = HttpServer(create_app(store, None, None, security, config), "127.0.0.1", 0)  # type: ignore[arg-type]
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert (await http.get("/console/events")).status_code == 401
            bearer = {"authorization": f"Bearer {token}"}
            async with http.stream("GET", "/console/events", headers=bearer) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                first_event = []
                while (line := await anext(lines)) != "":
                    first_event.append(line)
                assert "event: changed" in first_event  # at once: the page may have missed a change
                started = time.monotonic()
                config.stopping.set()
                await server.stop()  # returns only once the open stream has ended
                assert [line async for line in lines] == []
                assert time.monotonic() - started < 5
    finally:
        config.stopping.set()
        await server.stop()


async def test_open_streams_share_one_look_per_interval() -> None:
    looks: list[int] = []

    async def fingerprint() -> str:
        looks.append(1)
        return str(len(looks))

    shared = SharedLook(fingerprint, interval_s=3600)
    assert await asyncio.gather(shared(), shared(), shared()) == ["1", "1", "1"]
    assert len(looks) == 1
    fresh = SharedLook(fingerprint, interval_s=0)
    assert [await fresh(), await fresh()] == ["2", "3"]
