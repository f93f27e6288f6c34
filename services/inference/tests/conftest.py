"""Shared fixtures: the tiny test model, and a running inference service on it."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracewheel.core.health import wait_healthy
from tracewheel.core.natsserver import free_port
from tracewheel.inference.templates import SERVING_TEMPLATE, load_template
from tracewheel.inference.testing import build_tiny_model

CACHE = Path(os.environ.get("TRACEWHEEL_TEST_CACHE", Path.home() / ".cache" / "tracewheel-tests"))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 on the SmolLM2 tokenizer, with the project's serving template."""
    return build_tiny_model(CACHE / "tiny-qwen3", CACHE, chat_template=load_template(SERVING_TEMPLATE))


def make_adapter(base_dir: Path, target: Path, seed: int) -> Path:
    """A real LoRA adapter with random (non-zero) weights for the model in base_dir."""
    if (target / "adapter_config.json").exists():
        return target
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' own deprecation inside save_pretrained
        model.save_pretrained(target)
    return target


@dataclass
class RunningService:
    http_url: str
    grpc_address: str
    home: Path


@pytest.fixture(scope="session")
def inference_service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """`python -m tracewheel.inference` on the tiny model, as the supervisor starts it."""
    home = tmp_path_factory.mktemp("inference-home")
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_INFERENCE_")} | {
        "TRACEWHEEL_HOME": str(home),
        "TW_INFERENCE_MODEL": str(tiny_model_dir),
        "TW_INFERENCE_CHAT_TEMPLATE": SERVING_TEMPLATE,
        "TW_INFERENCE_HTTP_PORT": str(http_port),
        "TW_INFERENCE_GRPC_PORT": str(grpc_port),
        "TW_INFERENCE_DEFAULT_MAX_TOKENS": "16",
        "TW_INFERENCE_CONSUME_EVENTS": "false",
    }
    log = (home / "service.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.inference"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if not wait_healthy(f"127.0.0.1:{grpc_port}", timeout_s=120):
            raise RuntimeError("inference did not start:\n" + (home / "service.log").read_text()[-3000:])
        yield RunningService(f"http://127.0.0.1:{http_port}/v1", f"127.0.0.1:{grpc_port}", home)
    finally:
        process.terminate()
        process.wait(30)
        log.close()
