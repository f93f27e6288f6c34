"""build_state: the settings that shape the embedded engine (dtype, merged adapters)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.core.errors import InvalidArgument
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.engine import SamplingParams
from tracewheel.inference.engine.core import GenerationResult
from tracewheel.inference.runtime import build_state

from .conftest import make_adapter


@pytest.mark.parametrize(("dtype", "expected"), [("auto", torch.float32), ("bfloat16", torch.bfloat16)])
def test_the_engine_serves_base_and_adapter_in_the_dtype_set(
    tiny_model_dir: Path, tmp_path: Path, dtype: str, expected: torch.dtype
) -> None:
    settings = InferenceSettings(
        model=str(tiny_model_dir), chat_template=SERVING_TEMPLATE, TRACEWHEEL_HOME=tmp_path, dtype=dtype
    )
    state = build_state(settings)
    try:
        assert state.engine.model.dtype == expected
        state.registry.load("a1", str(make_adapter(tiny_model_dir, tmp_path / "a1", 1)))
        params = SamplingParams(max_tokens=6, temperature=0.0)
        for adapter in (None, "a1"):
            _text, result = state.engine.generate_blocking([5, 17, 300, 42], params, adapter)
            assert result.finish_reason in {"stop", "length"} and not result.error, result
        assert state.engine.weights is not None and state.engine.weights.merges == 1
        # both at once: decode steps mix the base and the adapter (PEFT's per-row path)
        results: list[GenerationResult] = []
        done = [threading.Event(), threading.Event()]
        for i, adapter in enumerate((None, "a1")):
            on_done = lambda r, i=i: (results.append(r), done[i].set())  # noqa: E731
            state.engine.submit([5, 17, 300, 42], params, adapter, lambda _t: None, on_done)
        assert all(event.wait(60) for event in done)
        assert all(not r.error for r in results), results
    finally:
        state.engine.stop()


def test_merged_adapters_can_be_turned_off(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = InferenceSettings(
        model=str(tiny_model_dir), chat_template=SERVING_TEMPLATE, TRACEWHEEL_HOME=tmp_path, merge_adapters=False
    )
    state = build_state(settings)
    state.engine.stop()
    assert state.engine.weights is None


def test_an_adapter_trained_on_another_base_model_is_refused_naming_both(tiny_model_dir: Path, tmp_path: Path) -> None:
    state = build_state(InferenceSettings(model=str(tiny_model_dir), TRACEWHEEL_HOME=tmp_path))
    try:
        own = make_adapter(tiny_model_dir, tmp_path / "own", 1)
        other = tmp_path / "other"
        shutil.copytree(own, other)
        config = json.loads((other / "adapter_config.json").read_text())
        (other / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "/m/Qwen3-4B"}))

        with pytest.raises(InvalidArgument) as refused:
            state.registry.load("other", str(other))
        state.registry.load("own", str(own))  # trained on the served folder: loads

        message = str(refused.value)
        assert (
            f"was trained on base model Qwen3-4B (/m/Qwen3-4B), but this server serves {tiny_model_dir.name}" in message
        )
        assert "TW_INFERENCE_MODEL" in message and "TW_TRAINER_BASE_MODEL_DIR" in message
        assert [m.name for m in state.registry.list() if m.kind == "adapter"] == ["own"]
    finally:
        state.engine.stop()


def test_the_served_template_and_parsers_are_the_model_familys_unless_set(tiny_model_dir: Path, tmp_path: Path) -> None:
    state = build_state(InferenceSettings(model=str(tiny_model_dir), TRACEWHEEL_HOME=tmp_path))
    state.engine.stop()
    assert state.engine.tokenizer.chat_template == load_template(SERVING_TEMPLATE)  # the tiny model's family: SmolLM2
    assert (state.tool_parser, state.reasoning_parser) == ("hermes", "qwen3")

    unparsed = InferenceSettings(model=str(tiny_model_dir), TRACEWHEEL_HOME=tmp_path, reasoning_parser="")
    state = build_state(unparsed)
    state.engine.stop()
    assert (state.tool_parser, state.reasoning_parser) == ("hermes", None)
