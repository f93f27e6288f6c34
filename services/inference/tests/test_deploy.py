"""Gated deployment through real NATS events, with real tiny adapters."""

from __future__ import annotations

import asyncio
import json
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
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.deploy import Deployer, Evaluation, gate
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
    assert gate(Evaluation(0.5), Evaluation(0.1), mode="strict")[0]
    assert not gate(Evaluation(0.5), Evaluation(0.5), mode="strict")[0]
    assert not gate(Evaluation(0.55), Evaluation(0.5), mode="strict", min_gain=0.1)[0]
    assert not gate(Evaluation(0.9), None, mode="strict")[0]
    assert gate(Evaluation(0.0), Evaluation(0.9), mode="always")[0]


def solved(ids: str, tasks: int = 20, suite: str = "heldout") -> Evaluation:
    passed = tuple(ids.split())
    return Evaluation(len(passed) / tasks, suite, tasks, passed)


def test_the_paired_gate_counts_tasks_won_and_lost() -> None:
    base = solved("t1")
    # a demo round 1 against its base model: six tasks won, one lost: p = 8/128 = 0.0625
    round_1 = solved("t2 t3 t4 t5 t6 t7")
    deploy, reason = gate(round_1, base, mode="paired", max_p=0.05)
    assert not deploy and "won 6 and lost 1 of 20 tasks" in reason and "p 0.062 (at most 0.05 required)" in reason
    assert gate(round_1, base, mode="paired", max_p=0.1)[0]
    # a higher rate from a split that is mostly churn does not pass; strict would deploy it
    churn = solved("t1 t2 t3 t4 t5 t6 t7")
    shuffled = solved("t1 t8 t9 t10 t11 t12 t13 t14")
    assert gate(shuffled, churn, mode="strict")[0]
    assert not gate(shuffled, churn, mode="paired", max_p=0.25)[0]  # won 7, lost 6: p 0.5
    # no task differs: no evidence
    assert not gate(solved("t1 t2"), solved("t2 t1"), mode="paired", max_p=1.0)[0]


def test_the_paired_gate_refuses_what_it_cannot_compare() -> None:
    deploy, reason = gate(solved("t1 t2"), Evaluation(0.0), mode="paired")
    assert not deploy and "the current model's evaluation does not list them" in reason
    deploy, reason = gate(Evaluation(0.5), solved(""), mode="paired")
    assert not deploy and "the candidate's evaluation does not list them" in reason
    deploy, reason = gate(solved("t1 t2 t3", tasks=10), solved("t1"), mode="paired")
    assert not deploy and "different suites ('heldout', 10 tasks against 'heldout', 20 tasks)" in reason


def test_evaluations_from_events_list_tasks_only_when_the_ids_match_the_rate() -> None:
    metrics = events_pb2.EvalMetrics(suite="heldout", tasks=4, success_rate=0.5, passed_task_ids=["a", "b"])
    assert Evaluation.of(metrics) == Evaluation(0.5, "heldout", 4, ("a", "b"))
    nothing_solved = events_pb2.EvalMetrics(suite="heldout", tasks=4, success_rate=0.0)
    assert Evaluation.of(nothing_solved).passed == ()
    # an evaluator that does not fill the ids: an empty list beside a rate above zero
    unlisted = events_pb2.EvalMetrics(suite="heldout", tasks=4, success_rate=0.5)
    assert Evaluation.of(unlisted).passed is None
    assert Evaluation.of(events_pb2.EvalMetrics(success_rate=0.0)).passed is None  # no task count either


def test_gate_settings_a_gate_does_not_read_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_INFERENCE_DEPLOY_MAX_P", "0.1")
    with pytest.raises(ValueError, match="deploy_max_p applies to the paired gate only"):
        InferenceSettings()
    monkeypatch.setenv("TW_INFERENCE_DEPLOY_GATE", "paired")
    assert InferenceSettings().deploy_max_p == 0.1
    monkeypatch.setenv("TW_INFERENCE_DEPLOY_MIN_GAIN", "0.05")
    with pytest.raises(ValueError, match="deploy_min_gain applies to the strict gate only"):
        InferenceSettings()


def test_the_paired_gate_reads_the_tasks_back_after_a_restart(
    engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    state_file = tmp_path / "deployments.json"
    first = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    second = make_adapter(tiny_model_dir, tmp_path / "a2", seed=2)
    deployer = Deployer(
        ModelRegistry(PeftAdapters(engine), "tiny"), state_file, alias="agent", mode="paired", max_p=0.1
    )
    decision = deployer.apply("a1", str(first), solved("t1 t2 t3 t4 t5"), solved(""))
    assert decision.deployed and "won 5 and lost 0" in decision.reason

    restarted = ModelRegistry(PeftAdapters(new_engine(tiny_model_dir)), "tiny")
    deployer = Deployer(restarted, state_file, alias="agent", mode="paired", max_p=0.1)
    # a2 solves more tasks than a1, but loses two of a1's: compared with a1's tasks read from disk
    decision = deployer.apply("a2", str(second), solved("t1 t2 t3 t6 t7 t8"), solved(""))
    assert not decision.deployed and "won 3 and lost 2" in decision.reason
    assert restarted.aliases["agent"] == "a1"


def test_records_written_before_the_paired_gate_are_read(engine: Engine, tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    state_file = tmp_path / "deployments.json"
    old = {"adapters": {"a1": str(adapter)}, "success": {"a1": 0.5, "tiny": 0.1}, "aliases": {"agent": "a1"}}
    state_file.write_text(json.dumps(old))
    deployer = Deployer(ModelRegistry(PeftAdapters(engine), "tiny"), state_file, alias="agent")
    assert deployer.record.evaluation("a1") == Evaluation(0.5)
    assert deployer.registry.aliases["agent"] == "a1"


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
