"""The jobs pages over HTTP against the trainer's real servicer: the list, a job's recipe and curve,
cancelling, bad input, escaping, the trainer down; and the page's view functions on their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tracewheel.core.natsserver import free_port
from tracewheel.dataset.console.job_view import latest_steps, loss_chart, progress_summary, recipe_rows, thin
from tracewheel.dataset.store import TraceStore
from tracewheel.trainer.jobs import JobState
from tracewheel.v1 import events_pb2, trainer_pb2

from .console_job_peers import RunningTrainer
from .web import console_client


@pytest.fixture
async def client(store: TraceStore, trainer: RunningTrainer) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(store, {"trainer": trainer.address}) as opened:
        yield opened


def _text(response: httpx.Response) -> str:
    return " ".join(response.text.split())


async def test_the_list_shows_every_job_newest_first_with_what_it_came_to(
    client: httpx.AsyncClient, trainer: RunningTrainer
) -> None:
    page = await client.get("/console/jobs")
    assert page.status_code == 200
    text = _text(page)
    order = [trainer.jobs[v].id for v in ("ds-waiting", "ds-live", "ds-broken", "ds-done")]
    positions = [text.index(f'data-job="{job_id}"') for job_id in order]
    assert positions == sorted(positions)
    assert 'href="/console/datasets/ds-done">ds-done</a>' in text
    assert "adapter 60.0% (6/10) vs base 40.0% (4/10)" in text
    assert "step 3 of 10 · loss 1.75 · 120 tokens/s · about 30 s left" in text
    assert "<script>document" not in page.text and "&lt;script&gt;document.title" in page.text
    fragment = await client.get("/console/fragment/jobs")
    assert fragment.status_code == 200 and "<html" not in fragment.text and order[0] in fragment.text


async def test_a_finished_jobs_page_has_its_recipe_resumed_curve_evaluation_and_adapter(
    client: httpx.AsyncClient, trainer: RunningTrainer
) -> None:
    job = trainer.jobs["ds-done"]
    page = await client.get(f"/console/jobs/{job.id}")
    assert page.status_code == 200
    text = _text(page)
    assert 'data-option="target_modules"' in text and "[q_proj, v_proj]" in text
    assert "8 logged steps" in text and text.count("<polyline") == 2  # loss and eval loss
    assert 'data-step="8"><td>8</td><td>1.2000</td><td>1.4000</td><td>0.0005</td>' in text
    assert 'data-step="6"><td>6</td><td>1.4000</td><td></td>' in text  # the resumed run's step 6
    assert 'data-figure="success"><th scope="row">success</th><td>60.0% (6/10)</td><td>40.0% (4/10)</td>' in text
    assert f"{job.id}/adapter" in text and f'href="/console/deployments/{job.id}"' in text
    assert "data-live=" not in text and "data-confirm" not in text  # finished: not live, nothing to cancel


async def test_a_running_jobs_page_is_live_and_offers_cancel(
    client: httpx.AsyncClient, trainer: RunningTrainer
) -> None:
    job = trainer.jobs["ds-live"]
    page = await client.get(f"/console/jobs/{job.id}")
    text = _text(page)
    assert page.status_code == 200
    assert f'data-live="/console/jobs/{job.id}/fragment" data-live-events="/console/events"' in text
    assert f'action="/console/api/jobs/{job.id}/cancel"' in text and "3 logged steps" in text
    assert "<script>document" not in page.text and "&lt;script&gt;document.title" in page.text  # in its recipe
    fragment = await client.get(f"/console/jobs/{job.id}/fragment")
    assert fragment.status_code == 200 and "<html" not in fragment.text and "step 3 of 10" in fragment.text


async def test_cancel_answers_what_happened_or_the_trainers_refusal(
    client: httpx.AsyncClient, trainer: RunningTrainer
) -> None:
    waiting, done = trainer.jobs["ds-waiting"], trainer.jobs["ds-done"]
    cancelled = await client.post(f"/console/api/jobs/{waiting.id}/cancel", json={})
    assert cancelled.status_code == 200
    assert cancelled.json() == {"message": f"Job {waiting.id} is cancelled (cancelled before it started)."}
    assert trainer.queue.get(waiting.id).state == JobState.CANCELLED

    refused = await client.post(f"/console/api/jobs/{done.id}/cancel", json={})
    assert refused.status_code == 400 and refused.json() == {"error": f"job {done.id} already finished (SUCCEEDED)"}
    unknown = await client.post("/console/api/jobs/agent-nope/cancel", json={})
    assert unknown.status_code == 404 and "no training job 'agent-nope'" in unknown.json()["error"]


async def test_an_unknown_job_is_a_404_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/jobs/agent-%3Cb%3Enope")
    assert page.status_code == 404 and "no training job &#39;agent-&lt;b&gt;nope&#39;" in page.text


async def test_a_trainer_missing_or_down_is_a_notice(store: TraceStore) -> None:
    async with console_client(store, {}) as client:
        listed = await client.get("/console/jobs")
        assert listed.status_code == 503 and "set TW_DATASET_TRAINER_ADDRESS" in listed.text
    address = f"127.0.0.1:{free_port()}"
    async with console_client(store, {"trainer": address}) as client:
        page = await client.get("/console/jobs/agent-1")
        assert page.status_code == 503 and f"the trainer at {address} did not answer" in page.text
        refused = await client.post("/console/api/jobs/agent-1/cancel", json={})
        assert refused.status_code == 503 and address in refused.json()["error"]


def test_views_summarise_progress_recipes_and_thin_long_curves() -> None:
    report = events_pb2.TrainingProgress(step=0, total_steps=0, phase="queued")
    assert progress_summary(report) == "queued" and progress_summary(None) == ""
    evaluating = events_pb2.TrainingProgress(step=10, total_steps=10, loss=0.5, phase="evaluating")
    assert progress_summary(evaluating) == "step 10 of 10 · loss 0.5 · evaluating"
    assert recipe_rows('{"optim": null, "bf16": false, "lora_r": 4}') == [
        ("bf16", "false"),
        ("lora_r", "4"),
        ("optim", "null"),
    ]
    assert recipe_rows("") == []
    points = [(float(x), 1.0) for x in range(1000)]
    thinned = thin(points, 300)
    assert len(thinned) <= 301 and thinned[0] == points[0] and thinned[-1] == points[-1]
    curve = [trainer_pb2.LossPoint(step=s, loss=1.0 / s) for s in range(1, 2001)]
    assert loss_chart(curve).count("<circle") <= 301
    assert [row.step for row in latest_steps(curve, 3)] == [2000, 1999, 1998]
    assert "nothing to plot yet" in loss_chart([])
