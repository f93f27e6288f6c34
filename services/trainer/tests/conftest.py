"""Fixtures: the tiny model (with the training template) and a tiny hand-made dataset directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tracewheel.core.chat import TRAINING_TEMPLATE, load_template
from tracewheel.core.dataset_layout import Manifest, SplitCounts, write_manifest
from tracewheel.inference.testing import build_tiny_model
from tracewheel.trainer.recipe import Recipe

CACHE = Path(os.environ.get("TRACEWHEEL_TEST_CACHE", Path.home() / ".cache" / "tracewheel-tests"))

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "browser_navigate",
            "description": "Open a URL",
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        },
    }
]


def agent_row(i: int) -> dict:
    call = {
        "id": f"call-{i}",
        "type": "function",
        "function": {"name": "browser_navigate", "arguments": json.dumps({"url": f"http://site/{i}"})},
    }
    return {
        "messages": [
            {"role": "system", "content": "You are a browser agent."},
            {"role": "user", "content": f"Open page {i} and tell me its title."},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call-{i}", "name": "browser_navigate", "content": f"Title {i}"},
            {"role": "assistant", "content": f"The title is Title {i}."},
        ],
        "tools": json.dumps(TOOLS),
    }


def write_dataset(target: Path, train_rows: list[dict], eval_rows: list[dict], version: str = "ds-1") -> Path:
    target.mkdir(parents=True, exist_ok=True)
    counts = SplitCounts(train=len(train_rows), eval=len(eval_rows))
    write_manifest(target, Manifest(version=version, base_model="tiny", rows=counts))
    for name, rows in (("train.jsonl", train_rows), ("eval.jsonl", eval_rows)):
        (target / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return target


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """The test machines are 2 shared cores: more threads only contend."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 on the SmolLM2 tokenizer, with the project's training template."""
    return build_tiny_model(CACHE / "tiny-qwen3-train", CACHE, chat_template=load_template(TRAINING_TEMPLATE))


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "dataset", [agent_row(i) for i in range(8)], [agent_row(100), agent_row(101)])


@pytest.fixture
def tiny_recipe() -> Recipe:
    """A few fast CPU steps."""
    return Recipe(
        lora_r=4,
        lora_alpha=8,
        max_steps=2,
        save_steps=1,
        per_device_train_batch_size=1,
        learning_rate=1e-3,
        chat_template=TRAINING_TEMPLATE,
        device="cpu",
        eval=True,
    )
