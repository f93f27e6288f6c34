"""Several inference replicas on one NATS: the gate runs once, every replica serves what was deployed.

Two real inference processes on the tiny model, with NATS users and permissions as in production
(user `inference`), adapters on a folder both read. An adapter is deployed while one replica is
down; when it comes back it catches up from the stream. A second deployment, while both run,
reaches both, and only one of them took the decision. A rollback or alias move made by hand on one
replica reaches the other, and one made while a replica is down reaches it when it comes back.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tracewheel.core.artifacts import EVAL_FILE, JobEvaluation
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.core.events import SUBJECT_MODEL_TRAINED, connect, ensure_streams, publish
from tracewheel.core.nats_auth import USERS, declared_streams, new_password
from tracewheel.core.natsserver import NatsServer
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Deployer
from tracewheel.inference.testing import RunningService, running_inference_service
from tracewheel.v1 import events_pb2, inference_pb2, inference_pb2_grpc

from .conftest import make_adapter
from .test_deploy import new_engine
from .test_gate import solved


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """nats-server with a user per service, each allowed its own subjects only."""
    server = NatsServer(tmp_path / "jetstream", passwords={user: new_password() for user in USERS})
    yield server.start()
    server.stop()


def replica_env(nats: NatsServer, adapters: Path) -> dict[str, str]:
    password = nats.passwords["inference"]  # type: ignore[index]
    return {
        "TW_INFERENCE_ADAPTERS_DIR": str(adapters),
        "TW_INFERENCE_CONSUME_EVENTS": "true",
        "TW_INFERENCE_NATS_URL": nats.url,
        "TW_INFERENCE_NATS_USER": "inference",
        "TW_INFERENCE_NATS_PASSWORD": password,
        "TW_INFERENCE_DEFAULT_MAX_TOKENS": "4",
    }


def models(replica: RunningService) -> dict[str, str]:
    """What a replica serves: model name -> kind (aliases: -> their target)."""
    with grpc.insecure_channel(replica.grpc_address) as channel:
        listed = inference_pb2_grpc.InferenceControlStub(channel).ListModels(inference_pb2.ListModelsRequest())
    return {m.name: (m.target if m.kind == "alias" else m.kind) for m in listed.models}


def control(replica: RunningService) -> inference_pb2_grpc.InferenceControlStub:
    return inference_pb2_grpc.InferenceControlStub(grpc.insecure_channel(replica.grpc_address))


def decisions(replica: RunningService) -> list[str]:
    with grpc.insecure_channel(replica.grpc_address) as channel:
        listed = inference_pb2_grpc.InferenceControlStub(channel).ListDeployments(
            inference_pb2.ListDeploymentsRequest()
        )
    return [d.adapter_name for d in listed.deployments]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def answers(replica: RunningService, model: str) -> bool:
    """The replica completes a chat with `model` (HTTP 200)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{replica.http_url}/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status == 200


def trained_adapter(model: Path, adapters: Path, name: str, seed: int, passed: str) -> tuple[Path, JobEvaluation]:
    """What a trainer's job leaves on the shared volume: <job>/adapter and <job>/eval.json."""
    adapter = make_adapter(model, adapters / name / "adapter", seed=seed)
    evaluation = JobEvaluation(metrics=solved(passed), baseline_metrics=solved("t1"))
    (adapters / name / EVAL_FILE).write_text(evaluation.model_dump_json())
    return adapter, evaluation


async def train(nats: NatsServer, name: str, path: Path, evaluation: JobEvaluation) -> None:
    """What the trainer publishes for an adapter, with its held-out evaluation."""
    client, js = await connect(nats.url, "trainer", nats.credentials("trainer"))
    await ensure_streams(js, declared_streams("trainer"))
    event = events_pb2.ModelTrained(
        adapter_name=name,
        adapter_path=str(path),
        metrics=eval_result_to_proto(evaluation.metrics),
        baseline_metrics=eval_result_to_proto(evaluation.baseline_metrics),
    )
    await publish(js, SUBJECT_MODEL_TRAINED, event, f"trained:{name}")
    await client.close()


@pytest.mark.slow
def test_every_replica_serves_the_deployed_adapter_one_that_was_down_included(
    secured_nats: NatsServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "adapters"  # the adapters volume every replica mounts
    first = trained_adapter(tiny_model_dir, shared, "a1", seed=1, passed="t1 t2 t3")
    second = trained_adapter(tiny_model_dir, shared, "a2", seed=2, passed="t1 t2 t3 t4")
    env = replica_env(secured_nats, shared)
    homes = tmp_path / "replica-a", tmp_path / "replica-b"
    for home in homes:
        home.mkdir()

    with running_inference_service(tiny_model_dir, homes[0], env) as a:
        with running_inference_service(tiny_model_dir, homes[1], env) as b:
            assert models(b)["agent"] != "a1"
        # b is down: a1 is trained and deployed now
        asyncio.run(train(secured_nats, "a1", *first))
        wait_until(lambda: models(a).get("agent") == "a1", "replica a serves a1")

        with running_inference_service(tiny_model_dir, homes[1], env) as b:
            wait_until(lambda: models(b).get("agent") == "a1", "replica b caught up with a1")
            assert models(b)["a1"] == "adapter" and answers(b, "agent") and answers(a, "agent")

            asyncio.run(train(secured_nats, "a2", *second))  # both running now
            for replica, label in ((a, "a"), (b, "b")):
                wait_until(lambda r=replica: models(r).get("agent") == "a2", f"replica {label} serves a2")
            assert answers(b, "a2")
            # the gate ran once per adapter, on whichever replica took the event
            assert sorted(decisions(a) + decisions(b)) == ["a1", "a2"]

            rolled = control(b).Rollback(inference_pb2.RollbackRequest(alias="agent"))  # by hand, on b
            assert (rolled.target, rolled.previous_target) == ("a1", "a2")
            wait_until(lambda: models(a).get("agent") == "a1", "replica a followed the rollback made on b")
            control(a).SetAlias(inference_pb2.SetAliasRequest(alias="agent", target="a2"))  # and back, on a
            wait_until(lambda: models(b).get("agent") == "a2", "replica b followed the move made on a")
        # b down again: a move made meanwhile reaches it when it comes back
        control(a).Rollback(inference_pb2.RollbackRequest(alias="agent"))
        with running_inference_service(tiny_model_dir, homes[1], env) as b:
            wait_until(lambda: models(b).get("agent") == "a1", "replica b caught up with the rollback")


def test_following_a_deployment_is_idempotent_and_goes_back_to_the_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(PeftAdapters(new_engine(tiny_model_dir)), "tiny")
    deployer = Deployer(registry, tmp_path / "deployments.json", alias="agent")
    adapter = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)

    assert deployer.follow("agent", "a1", str(adapter), solved("t1 t2"))
    assert not deployer.follow("agent", "a1", str(adapter), solved("t1 t2"))  # a replay changes nothing
    assert registry.aliases["agent"] == "a1" and deployer.record.evaluation("a1") == solved("t1 t2")
    assert deployer.follow("agent", "", "", None) and registry.aliases["agent"] == "tiny"  # a rollback to the base
    with pytest.raises(InvalidArgument, match="names no adapter path"):
        deployer.follow("agent", "a9", "", None)
    assert registry.aliases["agent"] == "tiny"
