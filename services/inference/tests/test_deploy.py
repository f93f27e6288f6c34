"""Gated deployment through real NATS events, with real tiny adapters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tracewheel.core.errors import NotFound, Unavailable
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_from_proto, eval_result_to_proto
from tracewheel.core.events import (
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    connect,
    ensure_streams,
    publish,
    run_consumer,
)
from tracewheel.core.natsserver import NatsServer
from tracewheel.core.paired import PairedSplit
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.deploy import Deployer
from tracewheel.inference.engine import Engine
from tracewheel.inference.events import TRAINED, make_alias_announcer, make_trained_handler
from tracewheel.inference.gate import DeployGate
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.v1 import evaluation_pb2, events_pb2, inference_pb2

from .conftest import make_adapter
from .test_gate import solved


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
        metrics=evaluation_pb2.EvalResult(success_rate=success),
        baseline_metrics=evaluation_pb2.EvalResult(success_rate=baseline),
    )


def test_evaluations_from_events_list_tasks_only_when_the_event_lists_them() -> None:
    metrics = eval_result_to_proto(solved("a b", tasks=4))
    assert eval_result_from_proto(metrics).passed_tasks == ("a", "b")
    nothing_solved = eval_result_to_proto(solved("", tasks=4))
    assert eval_result_from_proto(nothing_solved).passed_tasks == ()
    # an evaluator that does not list its tasks: figures alone, whatever the rate
    unlisted = evaluation_pb2.EvalResult(suite="heldout", tasks=4, success_rate=0.5)
    assert eval_result_from_proto(unlisted).passed_tasks is None
    assert (
        eval_result_from_proto(evaluation_pb2.EvalResult(success_rate=0.0)).passed_tasks is None
    )  # no task count either


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


def test_each_decision_is_recorded_with_its_gate_and_both_evaluations(
    engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    state_file = tmp_path / "deployments.json"
    adapter = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    deployer = Deployer(
        ModelRegistry(PeftAdapters(engine), "tiny"), state_file, alias="agent", mode="paired", max_p=0.1
    )
    base, candidate = solved("t1"), solved("t1 t2 t3")
    deployer.apply("a1", str(adapter), candidate, base)

    # read back by a restarted service under another gate: the decision keeps the one it was taken under
    restarted = Deployer(ModelRegistry(PeftAdapters(new_engine(tiny_model_dir)), "tiny"), state_file, alias="agent")
    decision = restarted.explain("a1")
    assert not decision.deployed and decision.alias == "agent" and decision.previous == "tiny"
    assert decision.gate == DeployGate("paired", max_p=0.1) and restarted.gate == DeployGate("strict")
    assert decision.candidate == candidate and decision.compared_with == base
    assert decision.split == PairedSplit(won=2, lost=0, both=1)
    assert "won 2 and lost 0 of 20 tasks" in decision.reason and "p 0.250 (at most 0.1 required)" in decision.reason
    assert restarted.decisions() == [decision]
    with pytest.raises(NotFound, match="no deployment decision recorded for adapter 'a9'"):
        restarted.explain("a9")


def test_records_written_before_the_paired_gate_are_read(engine: Engine, tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    state_file = tmp_path / "deployments.json"
    old = {"adapters": {"a1": str(adapter)}, "success": {"a1": 0.5, "tiny": 0.1}, "aliases": {"agent": "a1"}}
    state_file.write_text(json.dumps(old))
    deployer = Deployer(ModelRegistry(PeftAdapters(engine), "tiny"), state_file, alias="agent")
    assert deployer.record.evaluation("a1") == EvalResult(model="a1", success_rate=0.5)
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


def test_the_base_model_is_compared_on_the_suite_the_candidate_was_scored_on(
    engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    deployer = Deployer(ModelRegistry(PeftAdapters(engine), "tiny"), tmp_path / "deployments.json", alias="agent")
    shop_base, shop_adapter = solved("t1 t2 t3 t4", suite="heldout"), solved("t1", suite="heldout")
    first = deployer.apply("a1", str(make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)), shop_adapter, shop_base)
    team_base, team_adapter = solved("t1", suite="team:heldout"), solved("t1 t2", suite="team:heldout")
    second = deployer.apply("a2", str(make_adapter(tiny_model_dir, tmp_path / "a2", seed=2)), team_adapter, team_base)
    assert not first.deployed and first.compared_with == shop_base
    # the team's suite: the base model's figures on it (from the event), not the shop's recorded earlier
    assert second.deployed and second.previous == "tiny" and second.compared_with == team_base


async def test_a_move_by_hand_is_published_each_time_and_says_so_when_it_cannot_be(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    registry = ModelRegistry(PeftAdapters(engine=None), "tiny", adapters={"a1": str(tmp_path / "a1")})
    deployer = Deployer(registry, tmp_path / "deployments.json", alias="agent")
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    deployed = await js.pull_subscribe(SUBJECT_MODEL_DEPLOYED, durable="moves", stream="MODELS")
    control = InferenceControlServicer(registry, deployer, make_alias_announcer(js, deployer))

    for _ in range(2):  # the same move twice is two events: the second is not deduplicated as the first
        await control.SetAlias(inference_pb2.SetAliasRequest(alias="agent", target="a1"), None)
        await control.Rollback(inference_pb2.RollbackRequest(alias="agent"), None)
    events = [events_pb2.ModelDeployed.FromString(m.data) for m in await deployed.fetch(4, timeout=5)]
    moves = [(e.adapter_name, e.previous_adapter_name, e.rollback, e.adapter_path) for e in events]
    assert moves == [("a1", "", False, str(tmp_path / "a1")), ("", "a1", True, "")] * 2

    await client.close()  # NATS gone: the move is made here, and the answer says the others were not told
    with pytest.raises(Unavailable, match="other replicas were not told"):
        await control.SetAlias(inference_pb2.SetAliasRequest(alias="agent", target="a1"), None)
    assert registry.aliases["agent"] == "a1"
