"""After training: serve the candidate adapter, score it and its base model on the held-out suite.

The trainer does not run models itself. It asks inference (gRPC `LoadAdapter`) to serve the
new adapter under its job id, then the agent (gRPC `Evaluate`) to run the held-out suite with
it. The base model's baseline is asked with `use_cache`, so the agent measures it once per base
model and suite and reads it back after that. Both results (`tracewheel.core.evaluation.EvalResult`)
are written to `<job dir>/eval.json` in their JSON form before they are reported: a job killed
after evaluating is not evaluated again when it resumes. That file is the record inference checks a
models.v1.trained event against (`tracewheel.core.artifacts` declares it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.artifacts import EVAL_FILE, JobEvaluation, read_job_evaluation
from tracewheel.core.errors import FailedPrecondition
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_from_proto
from tracewheel.core.files import write_json_atomically
from tracewheel.v1 import agent_pb2, agent_pb2_grpc, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)

Evaluation = JobEvaluation  # the record of eval.json, declared in core.artifacts
read_evaluation = read_job_evaluation


class EvalOptions(BaseModel):
    """Where and how trained adapters are evaluated, declared once: the trainer's settings inherit
    these, so each is also `TW_TRAINER_<NAME>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_address: str = Field(
        default="",
        description="Agent gRPC address that evaluates each trained adapter on the held-out suite; "
        "empty: adapters are published without an evaluation (a strict deployment gate keeps them out).",
    )
    inference_address: str = Field(
        default="127.0.0.1:50051", description="Inference gRPC address that serves the adapter being evaluated."
    )
    eval_suite: str = Field(default="heldout", description="The suite adapters and their base model are scored on.")
    eval_concurrency: int = Field(default=0, ge=0, description="Tasks at once in an evaluation (0: the agent's).")
    eval_timeout_s: float = Field(default=3600.0, gt=0, description="The longest one evaluation may take.")


class EvalTarget(EvalOptions):
    """Where an evaluation runs: the options and the bearer token both services may require."""

    token: str | None = Field(default=None, description="Sent as `authorization: Bearer <token>`; None: nothing.")


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
                    model=model, suite=target.eval_suite, concurrency=target.eval_concurrency, use_cache=use_cache
                )
                return eval_result_from_proto(agent.Evaluate(request, timeout=target.eval_timeout_s, metadata=metadata))

            baseline = score(base, True)
            log.info("baseline %s on %s: success %.3f", base, target.eval_suite, baseline.success_rate)
            metrics = score(adapter_name, False)
            log.info("adapter %s on %s: success %.3f", adapter_name, target.eval_suite, metrics.success_rate)
    except grpc.RpcError as exc:
        raise FailedPrecondition(f"evaluation of {adapter_name} failed: {exc.code().name}: {exc.details()}") from exc
    evaluation = Evaluation(metrics=metrics, baseline_metrics=baseline)
    write_json_atomically(job_dir / EVAL_FILE, evaluation.model_dump(mode="json"))
    return evaluation
