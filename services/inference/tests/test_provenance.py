"""A models.v1.trained event is a claim: through real NATS, forged events change nothing served,
and the event the trainer would publish (its adapter and its eval.json) deploys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tracewheel.core.artifacts import ADAPTER_DIR, EVAL_FILE, JobEvaluation
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.evaluation_proto import eval_result_to_proto
from tracewheel.core.events import SUBJECT_MODEL_TRAINED, connect, ensure_streams, publish, run_consumer
from tracewheel.core.natsserver import NatsServer
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.deploy import Deployer
from tracewheel.inference.engine import Engine
from tracewheel.inference.events import TRAINED, make_trained_handler
from tracewheel.inference.provenance import Provenance, UnverifiedAdapter
from tracewheel.v1 import events_pb2

from .conftest import make_adapter
from .test_deploy import new_engine, wait_until
from .test_gate import solved

BASELINE = solved("t1 t2", tasks=10)


def _job(root: Path, job_id: str, tiny_model_dir: Path, seed: int, recorded: EvalResult | None) -> Path:
    """A job folder as the trainer leaves it: <root>/<job>/adapter and, when evaluated, eval.json."""
    adapter = make_adapter(tiny_model_dir, root / job_id / ADAPTER_DIR, seed=seed)
    if recorded is not None:
        record = JobEvaluation(metrics=recorded, baseline_metrics=BASELINE)
        (root / job_id / EVAL_FILE).write_text(record.model_dump_json())
    return adapter


def _event(
    name: str, path: Path | str, metrics: EvalResult, baseline: EvalResult = BASELINE
) -> events_pb2.ModelTrained:
    return events_pb2.ModelTrained(
        adapter_name=name,
        adapter_path=str(path),
        job_id=name,
        metrics=eval_result_to_proto(metrics),
        baseline_metrics=eval_result_to_proto(baseline),
    )


async def test_forged_trained_events_change_nothing_and_the_trainers_own_deploys(
    nats_server: NatsServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    perfect, nothing = solved(" ".join(f"t{i}" for i in range(1, 11)), tasks=10), solved("", tasks=10)
    outside = make_adapter(tiny_model_dir, tmp_path / "elsewhere" / ADAPTER_DIR, seed=1)
    inside = _job(root, "job-inflated", tiny_model_dir, 2, recorded=solved("t1", tasks=10))
    (root / "job-link").mkdir(parents=True)
    (root / "job-link" / ADAPTER_DIR).symlink_to(outside)  # inside by name, outside once followed
    genuine_record = solved("t1 t2 t3 t4 t5 t6", tasks=10)
    genuine = _job(root, "job-genuine", tiny_model_dir, 3, recorded=genuine_record)

    engine: Engine = new_engine(tiny_model_dir)
    registry = ModelRegistry(PeftAdapters(engine), "tiny")
    provenance = Provenance(root, str(tiny_model_dir))
    deployer = Deployer(registry, tmp_path / "deployments.json", alias="agent", provenance=provenance)
    client, js = await connect(nats_server.url, "test")
    await ensure_streams(js)
    stop = asyncio.Event()
    consumer = asyncio.create_task(run_consumer(js, TRAINED, make_trained_handler(js, deployer), stop, poll_s=0.2))
    try:
        forged = [
            _event("forged-outside", outside, perfect, nothing),  # success 1.0 against 0.0, a local path
            _event("forged-dotdot", f"{root}/../elsewhere/{ADAPTER_DIR}", perfect, nothing),
            _event("forged-link", root / "job-link" / ADAPTER_DIR, perfect, nothing),
            _event("forged-inflated", inside, perfect),  # inside the root, metrics not the record's
            _event("forged-unrecorded", root / "job-none" / ADAPTER_DIR, perfect),
        ]
        for event in forged:
            await publish(js, SUBJECT_MODEL_TRAINED, event, f"trained:{event.adapter_name}")
        await wait_until(lambda: all(e.adapter_name in deployer.record.decisions for e in forged))
        assert registry.adapters == {} and registry.aliases["agent"] == "tiny"  # nothing loaded, nothing moved
        reasons = {e.adapter_name: deployer.explain(e.adapter_name).reason for e in forged}
        assert all(d.refused and not d.deployed for d in deployer.decisions())
        assert "outside" in reasons["forged-outside"] and "outside" in reasons["forged-link"]
        assert "'..'" in reasons["forged-dotdot"]
        assert "not the trainer's record" in reasons["forged-inflated"]
        assert "no readable adapter_config.json" in reasons["forged-unrecorded"]

        await publish(js, SUBJECT_MODEL_TRAINED, _event("job-genuine", genuine, genuine_record), "trained:genuine")
        await wait_until(lambda: registry.aliases["agent"] == "job-genuine")
        assert not deployer.explain("job-genuine").refused and set(registry.adapters) == {"job-genuine"}
    finally:
        stop.set()
        await consumer
        await client.close()


def test_an_adapter_of_another_base_model_or_an_unrecorded_evaluation_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    unevaluated = _job(root, "job-plain", tiny_model_dir, 4, recorded=None)
    provenance = Provenance(root, str(tiny_model_dir))
    assert provenance.verify(str(unevaluated), None, None) == unevaluated.resolve()  # no record, no claim
    with pytest.raises(UnverifiedAdapter, match="the trainer recorded none"):
        provenance.verify(str(unevaluated), solved("t1", tasks=10), None)
    with pytest.raises(UnverifiedAdapter, match="this server serves Qwen3-4B"):
        Provenance(root, "/data/models/Qwen3-4B").verify(str(unevaluated), None, None)
