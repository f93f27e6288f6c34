"""`tracewheel models explain NAME` against inference's own control servicer and deployment record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.files import write_json_atomically
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Decision, Deployer, DeploymentRecord
from tracewheel.inference.gate import DeployGate
from tracewheel.inference.server import InferenceControlServicer
from tracewheel.v1 import inference_pb2_grpc

from .cli_services import BackgroundLoop, run_cli, serve


def solved(model: str, ids: str, tasks: int = 20) -> EvalResult:
    passed = set(ids.split())
    results = [
        TaskResult(task_id=f"t{i}", passed=f"t{i}" in passed, template="price_lookup") for i in range(1, tasks + 1)
    ]
    return EvalResult(model=model, suite="heldout", task_results=results)


@pytest.fixture
def inference(background: BackgroundLoop, home: Path, tmp_path: Path) -> Iterator[str]:
    """Inference's control servicer over a deployment record holding the gate's decision on `a2`."""
    base, candidate, gate = solved("tiny", "t1 t2"), solved("a2", "t1 t3 t4"), DeployGate("paired", max_p=0.05)
    verdict = gate.decide(candidate, base)
    decision = Decision(deployed=verdict.deploy, alias="agent", adapter="a2", previous="tiny", reason=verdict.reason,
                        gate=gate, candidate=candidate, compared_with=base, split=verdict.split)  # fmt: skip
    record = DeploymentRecord(evaluations={"tiny": base, "a2": candidate}, decisions={"a2": decision})
    state_file = tmp_path / "inference" / "deployments.json"
    write_json_atomically(state_file, record.model_dump(mode="json"))
    registry = ModelRegistry(PeftAdapters(engine=None), "tiny")  # nothing is loaded: the record lists no adapter files
    servicer = InferenceControlServicer(registry, Deployer(registry, state_file, alias="agent"))
    server, address = background.run(
        serve("InferenceControl", lambda s: inference_pb2_grpc.add_InferenceControlServicer_to_server(servicer, s))
    )
    yield address
    background.run(server.stop(0))


def test_explain_says_why_an_adapter_was_not_deployed(inference: str, capsys: pytest.CaptureFixture[str]) -> None:
    ran = run_cli(capsys, "models", "explain", "a2", "--address", inference)
    assert ran.code == 0, ran.err
    text = " ".join(ran.out.split())
    assert "a2: not deployed: alias agent stayed on tiny" in text
    assert "gate: paired: win more of the differing tasks, at one-sided sign-test p <= 0.05" in text
    assert "task by task: won 2, lost 1, both solved 1 (one-sided sign test p 0.500)" in text
    assert "reason: won 2 and lost 1 of 20 tasks against the current model" in text


def test_explain_json_is_one_document_with_both_evaluations(inference: str, capsys: pytest.CaptureFixture[str]) -> None:
    ran = run_cli(capsys, "models", "explain", "a2", "--json", "--address", inference)
    assert ran.code == 0, ran.err
    assert ran.out.count("\n") == 1  # one line: not wrapped
    data = json.loads(ran.out)
    assert (data["adapter"], data["deployed"], data["previous_target"]) == ("a2", False, "tiny")
    assert data["gate"] == {"mode": "paired", "min_gain": 0.0, "max_p": 0.05}
    assert data["split"] == {"won": 2, "lost": 1, "both": 1, "p_greater": 0.5}
    assert EvalResult.model_validate(data["candidate"]) == solved("a2", "t1 t3 t4")
    assert EvalResult.model_validate(data["compared_with"]).passed_tasks == ("t1", "t2")
    assert data["reason"].startswith("won 2 and lost 1 of 20 tasks")


def test_explain_an_unknown_adapter_is_one_line_not_found(inference: str, capsys: pytest.CaptureFixture[str]) -> None:
    ran = run_cli(capsys, "models", "explain", "nope", "--json", "--address", inference)
    assert ran.code == 2 and ran.out == ""
    assert ran.err.count("\n") == 1
    assert "NOT_FOUND: no deployment decision recorded for adapter 'nope'" in ran.err
