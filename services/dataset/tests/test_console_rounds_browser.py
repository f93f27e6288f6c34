"""The rounds page in headless Chromium, against the real trainer and inference servicers.

The trainer is its TrainerServicer over a real JobQueue (jobs.json in tmp) whose runner is held
by the test (a progress report, then a finish on release); the inference service is its
InferenceControlServicer over a real Deployer and ModelRegistry on the tiny model, deciding on a
real LoRA adapter. A round lands piece by piece while the page is open: it follows without a
reload.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tracewheel.core.evaluation import EvalResult
from tracewheel.core.grpc_server import GrpcServer
from tracewheel.core.http_server import HttpServer
from tracewheel.dataset.console import ConsoleConfig, Peers
from tracewheel.dataset.http_api import create_app
from tracewheel.dataset.store import TraceStore
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.trainer.jobs import Job, JobQueue, JobStore, RunOutput
from tracewheel.trainer.server import ProgressHub, TrainerServicer
from tracewheel.trainer.train import Progress
from tracewheel.v1 import inference_pb2_grpc, trainer_pb2_grpc

from .conftest import TraceFactory
from .web import no_build, open_page, serving, shoot, url_of

pytestmark = pytest.mark.slow

HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
SUITE = "shop:heldout"


class HeldRunner:
    """A job runner the test steers: it reports step 3 of 10, then finishes when released."""

    def __init__(self, adapter_dir: Path, fail_with: str = "") -> None:
        self.adapter_dir = adapter_dir
        self.fail_with = fail_with
        self.reported = threading.Event()
        self.release = threading.Event()

    def __call__(self, job: Job, progress: Callable[[Progress], None], should_stop: Callable[[], object]) -> RunOutput:
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        progress(Progress(3, 10, 1.25, 120.0, 30.0))
        self.reported.set()
        self.release.wait(60)
        adapter = EvalResult(model=job.id, suite=SUITE, tasks=4, success_rate=0.75)
        base = EvalResult(model="tiny-base", suite=SUITE, tasks=4, success_rate=0.25)
        return RunOutput(str(self.adapter_dir), adapter, base)


@dataclass
class Trainer:
    queue: JobQueue
    runner: HeldRunner
    address: str


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter of the tiny model (what inference loads when it deploys)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracewheel.inference.testing import tiny_test_model

    target = tmp_path_factory.mktemp("adapters") / "adapter"
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_test_model()),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    model.save_pretrained(target)
    return target


@asynccontextmanager
async def start_trainer(tmp_path: Path, runner: HeldRunner) -> AsyncIterator[Trainer]:
    queue = JobQueue(JobStore(tmp_path / "trainer" / "jobs.json"), runner)
    hub = ProgressHub(asyncio.get_running_loop())
    queue.add_listener(hub.on_job)
    server = GrpcServer(["tracewheel.v1.Trainer"])
    trainer_pb2_grpc.add_TrainerServicer_to_server(TrainerServicer(queue, hub, "tiny-base"), server.server)
    port = server.bind("127.0.0.1", 0)
    await server.start()
    worker = threading.Thread(target=queue.work_forever, name="test-trainer-worker")
    worker.start()
    try:
        yield Trainer(queue, runner, f"127.0.0.1:{port}")
    finally:
        runner.release.set()
        queue.close()
        await asyncio.to_thread(worker.join, 60)
        await server.stop(0)


@pytest.fixture
async def trainer(tmp_path: Path, adapter_dir: Path) -> AsyncIterator[Trainer]:
    async with start_trainer(tmp_path, HeldRunner(adapter_dir)) as started:
        yield started


@dataclass
class Inference:
    deployer: Any
    address: str


@pytest.fixture
async def inference(tmp_path: Path) -> AsyncIterator[Inference]:
    """The inference control service over a Deployer on the tiny model (PEFT adapters, real gate)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
    from tracewheel.inference.deploy import Deployer
    from tracewheel.inference.engine import Engine
    from tracewheel.inference.testing import tiny_test_model

    model_dir = tiny_test_model()
    engine = Engine(AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir))
    registry = ModelRegistry(PeftAdapters(engine), "tiny-base")
    deployer = Deployer(registry, tmp_path / "inference" / "deployments.json", alias="agent")
    server = GrpcServer(["tracewheel.v1.InferenceControl"])
    inference_pb2_grpc.add_InferenceControlServicer_to_server(
        InferenceControlServicer(registry, deployer), server.server
    )
    port = server.bind("127.0.0.1", 0)
    await server.start()
    try:
        yield Inference(deployer, f"127.0.0.1:{port}")
    finally:
        await server.stop(0)


@dataclass
class Console:
    url: str
    config: ConsoleConfig
    server: HttpServer


@asynccontextmanager
async def serve_console(store: TraceStore, addresses: dict[str, str]) -> AsyncIterator[Console]:
    """The dataset service's web app with the console connected to `addresses`."""
    peers = Peers(addresses, timeout_s=5.0)  # type: ignore[arg-type]
    config = ConsoleConfig(peers)
    try:
        async with serving(create_app(store, no_build, None, console=config), config.stopping) as server:  # type: ignore[arg-type]
            yield Console(url_of(server), config, server)
    finally:
        await peers.close()


@pytest.fixture
async def browser_page() -> AsyncIterator[Page]:
    dialogs: list[str] = []
    async with open_page(timeout_ms=20_000) as opened:
        opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
        yield opened
    assert not dialogs, f"a script ran: {dialogs}"


async def test_a_live_round_appears_on_the_open_page_without_a_reload(
    browser_page: Page, store: TraceStore, make_trace: TraceFactory, trainer: Trainer, inference: Inference
) -> None:
    page = browser_page
    store.ingest(make_trace("run-1"))
    async with serve_console(store, {"trainer": trainer.address, "inference": inference.address}) as console:
        await page.goto(f"{console.url}/console")
        live = page.locator("section[data-live]")
        await expect(page.locator("#no-rounds")).to_be_visible()
        await expect(live).to_have_attribute("data-refreshed", "1")  # the event stream is connected
        await page.evaluate("window.stayed = true")  # gone if the page reloads

        store.record_build("ds-1", ["run-1"], train_rows=4, eval_rows=1)
        first = page.locator("#round-1")
        await expect(first.locator(".step-dataset")).to_contain_text("4 train / 1 eval rows")
        await expect(first.get_by_role("link", name="ds-1")).to_have_attribute("href", "/console/datasets/ds-1")
        await expect(first.locator(".step-job")).to_contain_text("no job yet")

        job = trainer.queue.submit("ds-1", "/datasets/ds-1", "tiny-base", SUITE)
        await expect(first.locator(".progress")).to_have_text("step 3/10, loss 1.250")
        await expect(first.locator(".job-state")).to_have_text("running")
        await expect(first.get_by_role("link", name=job.id)).to_have_attribute("href", f"/console/jobs/{job.id}")
        await expect(page.locator(".chart-empty")).to_be_visible()  # nothing evaluated yet
        await shoot(page, "rounds-running")

        trainer.runner.release.set()
        await expect(first.locator(".job-state")).to_have_text("succeeded")
        await expect(first.locator(".step-eval")).to_contain_text("adapter 75% vs tiny-base 25%")
        # the adapter at round 1; the model it was compared with at rounds 0 and 1
        await expect(page.locator("svg.chart circle")).to_have_count(3)
        await expect(first.locator(".step-deploy")).to_contain_text("no decision yet")

        done = trainer.queue.get(job.id)
        await asyncio.to_thread(
            inference.deployer.apply,
            job.id,
            done.adapter_path,
            done.metrics,
            done.baseline_metrics,
        )
        deployed = first.get_by_role("link", name="deployed", exact=True)
        await expect(deployed).to_have_attribute("href", f"/console/deployments/{job.id}")
        await expect(first.locator(".step-deploy")).to_contain_text("success 0.750 beats 0.250")
        await expect(page.locator("#round-0")).to_contain_text("tiny-base")
        assert await page.evaluate("window.stayed === true")
        await shoot(page, "rounds")

        await _stops_promptly(console)  # the page still holds its event stream open


async def _stops_promptly(console: Console) -> None:
    started = time.monotonic()
    console.config.stopping.set()
    await console.server.stop()
    assert time.monotonic() - started < 5, "an open event stream held the server's shutdown"


async def test_missing_and_silent_peers_leave_builds_and_a_notice_and_hostile_text_stays_text(
    browser_page: Page, store: TraceStore, make_trace: TraceFactory, tmp_path: Path, adapter_dir: Path
) -> None:
    page = browser_page
    store.ingest(make_trace("run-1"))
    store.record_build(f"ds-{HOSTILE}", ["run-1"], train_rows=2, eval_rows=1)
    async with start_trainer(tmp_path, HeldRunner(adapter_dir, fail_with=f"bad rows {HOSTILE}")) as trainer:
        trainer.queue.submit(f"ds-{HOSTILE}", "/datasets/x", "tiny-base")
        for _ in range(200):  # the worker fails the job at once
            if trainer.queue.list()[0].state == "FAILED":
                break
            await asyncio.sleep(0.05)
        async with serve_console(store, {"trainer": trainer.address}) as console:
            response = await page.goto(f"{console.url}/console")
            assert response is not None and response.status == 503
            await expect(page.locator(".notice-peer")).to_contain_text("TW_DATASET_INFERENCE_ADDRESS")
            first = page.locator("#round-1")
            await expect(first.locator(".step-dataset a")).to_have_text(f"ds-{HOSTILE}")
            await expect(first.locator(".job-state")).to_have_text("failed")
            await expect(first.locator(".step-job .reason")).to_contain_text(f"bad rows {HOSTILE}")
            await expect(first.locator(".step-deploy")).to_contain_text("the inference service is not reachable")
            assert await page.locator("main img").count() == 0 and await page.title() != "pwned"
            await shoot(page, "rounds-peers-missing")

    # the trainer is gone now: its address no longer answers
    async with serve_console(store, {"trainer": trainer.address}) as console:
        await page.goto(f"{console.url}/console")
        notice = page.locator(".notice-peer", has_text="Jobs and evaluations are not shown")
        await expect(notice).to_contain_text(f"the trainer at {trainer.address} did not answer")
        await expect(page.locator("#round-1 .step-job")).to_contain_text("the trainer is not reachable")
        await expect(page.locator("#round-1 .step-dataset a")).to_have_text(f"ds-{HOSTILE}")
        assert await page.title() != "pwned"
