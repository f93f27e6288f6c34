"""What the services must agree on about a base model: tokenizer fingerprint, context, name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracewheel.core.base_model import (
    FALLBACK_MAX_LENGTH,
    MAX_LENGTH_CAP,
    context_length,
    default_max_length,
    model_name,
    tokenizer_sha256,
)


def word_tokenizer(words: list[str], added: tuple[str, ...] = ()) -> object:
    """A real (small) transformers tokenizer over `words`, with `added` as added tokens."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(WordLevel({word: index for index, word in enumerate(words)}, unk_token=words[0]))
    backend.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=words[0])
    tokenizer.add_tokens(list(added))
    return tokenizer


def test_the_tokenizer_fingerprint_follows_what_ids_mean_not_the_template() -> None:
    words = ["<unk>", "hello", "world"]
    one, same = word_tokenizer(words), word_tokenizer(words)
    same.chat_template = "{{ messages }}"  # type: ignore[attr-defined]

    assert tokenizer_sha256(one) == tokenizer_sha256(same) and len(tokenizer_sha256(one)) == 64
    assert tokenizer_sha256(word_tokenizer(["<unk>", "world", "hello"])) != tokenizer_sha256(one)  # ids swapped
    assert tokenizer_sha256(word_tokenizer(words, ("<think>",))) != tokenizer_sha256(one)  # a token added


def model_folder(root: Path, config: dict[str, object]) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def test_the_default_row_length_is_the_base_models_context_capped(tmp_path: Path) -> None:
    smollm2 = model_folder(tmp_path / "SmolLM2-135M-Instruct", {"max_position_embeddings": 8192})
    qwen3 = model_folder(tmp_path / "Qwen3-4B", {"max_position_embeddings": 40960})
    nested = model_folder(tmp_path / "vl", {"text_config": {"max_position_embeddings": 4096}})

    assert (context_length(smollm2), context_length(qwen3), context_length(nested)) == (8192, 40960, 4096)
    assert default_max_length(smollm2) == 8192
    assert default_max_length(str(qwen3)) == MAX_LENGTH_CAP == 32768
    assert context_length(tmp_path / "missing") is None and context_length("") is None
    assert default_max_length("Qwen/Qwen3-4B") == FALLBACK_MAX_LENGTH  # an id: no config.json to read


@pytest.mark.parametrize("spec", ["/data/models/Qwen3-4B", "Qwen/Qwen3-4B", "Qwen3-4B/", "Qwen3-4B"])
def test_a_model_is_named_without_where_it_lives(spec: str) -> None:
    assert model_name(spec) == "Qwen3-4B"
