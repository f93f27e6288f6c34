"""The Qwen3 production path on the CPU: a tiny random Qwen3 with Qwen3's chat template and added
tokens goes through the embedded stack's flywheel, every service resolving the same chat format
from the model (its family, qwen3): build (qwen3_train rows) -> train -> serve (Qwen3's template,
hermes + qwen3 parsers) -> evaluate -> deploy.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tracewheel.cli.demo_profiles import quick_profile
from tracewheel.cli.flywheel import Flywheel
from tracewheel.cli.stack import StackInfo, Supervisor
from tracewheel.core.base_model import tokenizer_sha256
from tracewheel.core.chat import load_template, template_sha256
from tracewheel.core.dataset_layout import read_manifest
from tracewheel.inference.testing import qwen3_test_model
from tracewheel.v1 import agent_pb2, inference_pb2

from .test_cli_up import free_offset

pytestmark = pytest.mark.slow


def test_a_tiny_qwen3_is_built_trained_served_evaluated_and_deployed_in_qwen3s_format(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    model = qwen3_test_model()
    logs = io.StringIO()
    profile = quick_profile(model)
    supervisor = Supervisor(tmp_path, port_offset=free_offset(), env=profile.env, sink=logs, health_timeout_s=120)
    supervisor.start()
    info = StackInfo.read(tmp_path)
    assert info is not None
    fw = Flywheel(info)
    try:
        published = fw.agent.CollectDemonstrations(agent_pb2.CollectDemonstrationsRequest(), timeout=120)
        assert published.trace_ids
        result = fw.wait_round(set(), timeout_s=240)

        # build: rows rendered with Qwen3's training template on the model's own tokenizer
        manifest = read_manifest(Path(result.dataset_path))
        assert manifest.template_sha256 == template_sha256(load_template("qwen3_train"))
        assert manifest.tokenizer_sha256 == tokenizer_sha256(AutoTokenizer.from_pretrained(model))
        assert manifest.base_model == str(model) and manifest.max_length == 4096  # the profile's length
        rows = (Path(result.dataset_path) / "train.jsonl").read_text().splitlines()
        assert rows and all(json.loads(row)["messages"] for row in rows)
        # train: an adapter of this base model (inference checks the name it records)
        assert result.state == "SUCCEEDED", result
        adapter_config = json.loads((Path(result.adapter_path) / "adapter_config.json").read_text())
        assert adapter_config["base_model_name_or_path"] == str(model)
        # serve: Qwen3's template with the family's parsers, as the dataset and trainer resolved it
        assert "chat format of family qwen3, parsers hermes + qwen3" in logs.getvalue()
        # evaluate, then deploy: the held-out suite scored the adapter and the alias moved to it
        assert result.metrics["model"] == result.job_id and result.metrics["tasks"] == 2
        assert result.deployed
        served = fw.inference.ListModels(inference_pb2.ListModelsRequest(), timeout=10).models
        assert {m.name: m.target for m in served}["agent"] == result.job_id
    finally:
        fw.close()
        supervisor.stop()
