"""Gated deployment through real NATS events, with real tiny adapters."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.events import (
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    connect,
    ensure_streams,
    publish,
    run_consumer,
)
from tracewheel.core.natsserver import NatsServer
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Deployer, gate
from tracewheel.inference.engine import Engine
from tracewheel.inference.events import TRAINED, make_trained_handler
from tracewheel.v1 import events_pb2

from .conftest import make_adapter


def new_engine(model_dir: Path) -> Engine:
    """A freshly loaded model, as after a process restart (the engine is not started: no generation here)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return Engine(AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir))


@pytest.fixture
def engine(tiny_model_dir: Path) -> Engine:
    return new_engine(tiny_model_dir)


def trained(name: str, path: Path, success: float, baseline: float = 0.1) -> events_pb2.ModelTrained:
    return events_pb2.ModelTrained(
        adapter_name=name,
        adapter_path=str(path),
        base_model="tiny",
        metrics=events_pb2.EvalMetrics(success_rate=success),
        baseline_metrics=events_pb2.EvalMetrics(success_rate=baseline),
    )


def test_gate_compares_with_a_margin() -> None:
    assert gate(0.5, 0.1, mode="strict", min_gain=0.0)[0]
    assert not gate(0.5, 0.5, mode="strict", min_gain=0.0)[0]
    assert not gate(0.55, 0.5, mode="strict", min_gain=0.1)[0]
    assert not gate(0.9, None, mode="strict", min_gain=0.0)[0]
    assert gate(0.0, 0.9, mode="always", min_gain=0.0)[0]


async def wait_until(condition: Any, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


async def test_trained_events_deploy_only_better_adapters_and_survive_restarts(
    nats_server: NatsServer, engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    good = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    worse = make_adapter(tiny_model_dir, tmp_path / "a2", seed=2)
    state_file = tmp_path / "deployments.json"
    registry = ModelRegistry(PeftAdapters(engine), "tiny")
    deployer = Deployer(registry, state_file, alias="agent")
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    deployed = await js.pull_subscribe(SUBJECT_MODEL_DEPLOYED, durable="watch", stream="MODELS")
    stop = asyncio.Event()
    consumer = asyncio.create_task(run_consumer(js, TRAINED, make_trained_handler(js, deployer), stop, poll_s=0.2))

    await publish(js, SUBJECT_MODEL_TRAINED, trained("a1", good, 0.5), "trained:a1")
    await wait_until(lambda: registry.aliases["agent"] == "a1")
    # a redelivery (same event, new message) changes nothing and publishes nothing new
    await publish(js, SUBJECT_MODEL_TRAINED, trained("a1", good, 0.5), "trained:a1:again")
    await publish(js, SUBJECT_MODEL_TRAINED, trained("a2", worse, 0.3), "trained:a2")
    await publish(js, SUBJECT_MODEL_TRAINED, trained("a3", tmp_path / "missing", 0.9), "trained:a3")
    await wait_until(lambda: "a2" in registry.adapters)
    dead = await js.pull_subscribe("deadletter.>", durable="dead", stream="DEADLETTER")
    (letter,) = await dead.fetch(1, timeout=30)
    assert "cannot be served" in letter.headers["Tw-Reason"]
    stop.set()
    await consumer

    assert registry.aliases["agent"] == "a1"  # a2 is worse, a3 broken: the alias stays
    assert set(registry.adapters) == {"a1", "a2"}
    events = await deployed.fetch(5, timeout=2)
    payloads = [events_pb2.ModelDeployed.FromString(m.data) for m in events]
    assert [(p.alias, p.adapter_name, p.previous_adapter_name) for p in payloads] == [("agent", "a1", "tiny")]
    await client.close()

    restarted = ModelRegistry(PeftAdapters(new_engine(tiny_model_dir)), "tiny")
    Deployer(restarted, state_file, alias="agent")
    assert restarted.aliases["agent"] == "a1" and set(restarted.adapters) == {"a1", "a2"}
    assert restarted.rollback("agent") == ("tiny", "a1")
    again = ModelRegistry(PeftAdapters(new_engine(tiny_model_dir)), "tiny")
    Deployer(again, state_file, alias="agent")
    assert again.aliases["agent"] == "tiny"
