"""After training: serve the candidate adapter, score it and its base model on the held-out suite.

The trainer does not run models itself. It asks inference (gRPC `LoadAdapter`) to serve the
new adapter under its job id, then the agent (gRPC `Evaluate`) to run the held-out suite with
it. The base model's baseline is asked with `use_cache`, so the agent measures it once per base
model and suite and reads it back after that. Both results (`tracewheel.core.evaluation.EvalResult`)
are written to `<job dir>/eval.json` in their JSON form before they are reported: a job killed
after evaluating is not evaluated again when it resumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from pydantic import BaseModel, ConfigDict

from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.core.files import write_json_atomically
from tracewheel.v1 import agent_pb2, agent_pb2_grpc, inference_pb2, inference_pb2_grpc

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


class Evaluation(BaseModel):
    """A job's held-out evaluation, as `eval.json` holds it.

    Attributes:
        metrics: the adapter's.
        baseline_metrics: its base model's, on the same suite.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: EvalResult
    baseline_metrics: EvalResult


def read_evaluation(job_dir: Path) -> Evaluation | None:
    """The evaluation a previous run of the job wrote, if any."""
    path = job_dir / EVAL_FILE
    if not path.exists():
        return None
    return Evaluation.model_validate_json(path.read_text(encoding="utf-8"))


def evaluate_adapter(target: EvalTarget, adapter_name: str, adapter_path: Path, job_dir: Path) -> Evaluation:
    """Serves the adapter, evaluates it and the base model, and records the result in `job_dir`.

    Raises:
        FailedPrecondition: inference cannot serve the adapter, or a service failed (the gRPC
            status and its message are named).
        InvalidArgument: the agent answered with an evaluation whose figures contradict its tasks.
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

            def score(model: str, use_cache: bool) -> EvalResult:
                request = agent_pb2.EvaluateRequest(
                    model=model, suite=target.suite, concurrency=target.concurrency, use_cache=use_cache
                )
                return eval_result_from_proto(agent.Evaluate(request, timeout=target.timeout_s, metadata=metadata))

            baseline = score(base, True)
            log.info("baseline %s on %s: success %.3f", base, target.suite, baseline.success_rate)
            metrics = score(adapter_name, False)
            log.info("adapter %s on %s: success %.3f", adapter_name, target.suite, metrics.success_rate)
    except grpc.RpcError as exc:
        raise FailedPrecondition(f"evaluation of {adapter_name} failed: {exc.code().name}: {exc.details()}") from exc
    evaluation = Evaluation(metrics=metrics, baseline_metrics=baseline)
    write_json_atomically(job_dir / EVAL_FILE, evaluation.model_dump(mode="json"))
    return evaluation
