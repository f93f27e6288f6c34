"""bench/scale.py's fan-out: seconds from a models.v1.trained event to two inference replicas serving the adapter.

Two inference processes on the tiny test model follow one NATS server; the adapter (random LoRA
weights) and its eval.json lie in a folder both read. The clock starts at the publish and stops
when both replicas list the alias pointing at the adapter.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from pathlib import Path

import grpc

from tracewheel.core.artifacts import EVAL_FILE, JobEvaluation
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.core.events import SUBJECT_MODEL_TRAINED, connect, ensure_streams, publish
from tracewheel.core.natsserver import NatsServer
from tracewheel.inference.testing import RunningService, running_inference_service, tiny_test_model
from tracewheel.v1 import events_pb2, inference_pb2, inference_pb2_grpc


def _evaluation(solved: int) -> EvalResult:
    tasks = [TaskResult(task_id=f"t{i}", passed=i < solved) for i in range(10)]
    return EvalResult(model="m", suite="heldout", task_results=tasks)


def _adapter(model: Path, adapters: Path) -> tuple[Path, JobEvaluation]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    target = adapters / "a1" / "adapter"
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(model), lora).save_pretrained(target)
    evaluation = JobEvaluation(metrics=_evaluation(6), baseline_metrics=_evaluation(1))
    (adapters / "a1" / EVAL_FILE).write_text(evaluation.model_dump_json())
    return target, evaluation


def _serves(replica: RunningService, adapter: str) -> bool:
    with grpc.insecure_channel(replica.grpc_address) as channel:
        listed = inference_pb2_grpc.InferenceControlStub(channel).ListModels(inference_pb2.ListModelsRequest())
    return any(m.name == "agent" and m.target == adapter for m in listed.models)


async def _publish_trained(url: str, path: Path, evaluation: JobEvaluation) -> None:
    client, js = await connect(url, "bench")
    await ensure_streams(js)
    event = events_pb2.ModelTrained(
        adapter_name="a1",
        adapter_path=str(path),
        metrics=eval_result_to_proto(evaluation.metrics),
        baseline_metrics=eval_result_to_proto(evaluation.baseline_metrics),
    )
    await publish(js, SUBJECT_MODEL_TRAINED, event, "trained:a1")
    await client.close()


def fanout_seconds(tmp: Path, timeout_s: float = 120.0) -> float:
    """Seconds from the trained event to both replicas serving its adapter.

    Raises:
        TimeoutError: they did not within `timeout_s`.
    """
    model = tiny_test_model()
    adapters = tmp / "adapters"
    path, evaluation = _adapter(model, adapters)
    nats = NatsServer(tmp / "jetstream").start()
    env = {"TW_INFERENCE_CONSUME_EVENTS": "true", "TW_INFERENCE_NATS_URL": nats.url}
    env |= {"TW_INFERENCE_ADAPTERS_DIR": str(adapters), "TW_INFERENCE_DEFAULT_MAX_TOKENS": "4"}
    try:
        with ExitStack() as stack:
            replicas = []
            for name in ("replica-a", "replica-b"):
                (tmp / name).mkdir()
                replicas.append(stack.enter_context(running_inference_service(model, tmp / name, env)))
            start = time.perf_counter()
            asyncio.run(_publish_trained(nats.url, path, evaluation))
            while not all(_serves(replica, "a1") for replica in replicas):
                if time.perf_counter() - start > timeout_s:
                    raise TimeoutError(f"the replicas did not serve the adapter within {timeout_s:.0f} s")
                time.sleep(0.05)
            return time.perf_counter() - start
    finally:
        nats.stop()
