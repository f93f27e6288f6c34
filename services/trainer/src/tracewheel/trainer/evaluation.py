"""After training: serve the candidate adapter, score it and its base model on the held-out suite.

The trainer does not run models itself. It asks inference (gRPC `LoadAdapter`) to serve the
new adapter under its job id, then the agent (gRPC `Evaluate`) to run the held-out suite with
it. The base model's baseline is asked with `use_cache`, so the agent measures it once per base
model and suite and reads it back after that. The results are written to `<job dir>/eval.json`
before they are reported: a job killed after evaluating is not evaluated again when it resumes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.files import write_json_atomically
from tracewheel.v1 import agent_pb2, agent_pb2_grpc, events_pb2, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)

EVAL_FILE = "eval.json"


@dataclass(frozen=True)
class EvalTarget:
    """Where the evaluation runs.

    Attributes:
        agent_address: the agent's gRPC address (runs the suite).
        inference_address: inference's gRPC address (serves the candidate adapter).
        suite: the suite that scores adapters (held-out).
        concurrency: tasks at once (0: the agent's default).
        timeout_s: the longest one evaluation may take.
        token: bearer token for both services, when they require one.
    """

    agent_address: str
    inference_address: str
    suite: str = "heldout"
    concurrency: int = 0
    timeout_s: float = 3600.0
    token: str | None = None


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]


def metrics_dict(message: events_pb2.EvalMetrics) -> dict[str, Any]:
    """Every EvalMetrics field by name (`tasks` as an int: proto JSON writes int64 as a string)."""
    data = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data["tasks"] = int(data.get("tasks", 0))
    return data


def read_evaluation(job_dir: Path) -> Evaluation | None:
    """The evaluation a previous run of the job wrote, if any."""
    path = job_dir / EVAL_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Evaluation(data["metrics"], data["baseline_metrics"])


def _write_evaluation(job_dir: Path, evaluation: Evaluation) -> None:
    data = {"metrics": evaluation.metrics, "baseline_metrics": evaluation.baseline_metrics}
    write_json_atomically(job_dir / EVAL_FILE, data)


def evaluate_adapter(target: EvalTarget, adapter_name: str, adapter_path: Path, job_dir: Path) -> Evaluation:
    """Serves the adapter, evaluates it and the base model, and records the result in `job_dir`.

    Raises:
        FailedPrecondition: inference cannot serve the adapter, or a service failed (the gRPC
            status and its message are named).
    """
    metadata = (("authorization", f"Bearer {target.token}"),) if target.token else None
    try:
        with grpc.insecure_channel(target.inference_address) as channel:
            control = inference_pb2_grpc.InferenceControlStub(channel)
            control.LoadAdapter(
                inference_pb2.LoadAdapterRequest(lora_name=adapter_name, lora_path=str(adapter_path)),
                timeout=300,
                metadata=metadata,
            )
            served = control.ListModels(inference_pb2.ListModelsRequest(), timeout=30, metadata=metadata).models
        base = next((m.name for m in served if m.kind == "base"), "")
        if not base:
            raise FailedPrecondition(f"inference at {target.inference_address} lists no base model")
        with grpc.insecure_channel(target.agent_address) as channel:
            agent = agent_pb2_grpc.AgentStub(channel)

            def score(model: str, use_cache: bool) -> dict[str, Any]:
                request = agent_pb2.EvaluateRequest(
                    model=model, suite=target.suite, concurrency=target.concurrency, use_cache=use_cache
                )
                return metrics_dict(agent.Evaluate(request, timeout=target.timeout_s, metadata=metadata))

            baseline = score(base, True)
            log.info("baseline %s on %s: success %.3f", base, target.suite, baseline.get("success_rate", 0.0))
            metrics = score(adapter_name, False)
            log.info("adapter %s on %s: success %.3f", adapter_name, target.suite, metrics.get("success_rate", 0.0))
    except grpc.RpcError as exc:
        raise FailedPrecondition(f"evaluation of {adapter_name} failed: {exc.code().name}: {exc.details()}") from exc
    evaluation = Evaluation(metrics, baseline)
    _write_evaluation(job_dir, evaluation)
    return evaluation
