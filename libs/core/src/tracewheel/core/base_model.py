"""What the dataset, the trainer and inference must agree on about a base model, computed once.

- `tokenizer_sha256(tokenizer)`: a fingerprint of what token ids mean (the vocabulary and the
  added tokens). A dataset build records it in its manifest; the trainer refuses a dataset whose
  fingerprint is not that of the tokenizer it trains with (the ids would name other tokens).
- `context_length(base_model)` and `default_max_length(base_model)`: the base model's context
  from its config.json, and the longest row a build keeps when no length is set.
- `model_name(spec)`: the name a model id or folder path stands for, to tell base models apart
  across machines that mount the same folder at different paths.

Text and JSON only (no transformers): the tokenizer is any object with `get_vocab()` and
`added_tokens_decoder`, as transformers' tokenizers have.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_LENGTH_CAP = 32768
"""The longest default row: Qwen3 declares 40960 positions (131072 with YaRN); agent traces of
9-16k tokens fit in 32k, and longer rows cost memory quadratically in attention."""
FALLBACK_MAX_LENGTH = 8192
"""The default row length when the base model's config.json is not readable (no folder)."""


def tokenizer_sha256(tokenizer: Any) -> str:
    """SHA-256 (hex) of a tokenizer's vocabulary (token -> id) and added tokens (id -> content,
    special): equal for two tokenizers whose ids mean the same tokens, whatever the files'
    formatting or the chat template."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0]))
    added = sorted(
        (int(index), token.content, bool(token.special)) for index, token in tokenizer.added_tokens_decoder.items()
    )
    payload = json.dumps({"vocab": vocab, "added": added}, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def context_length(base_model: str | Path) -> int | None:
    """`max_position_embeddings` of a model folder's config.json (or of its `text_config`);
    None when there is no readable config.json or it declares none."""
    config_file = Path(base_model) / "config.json" if str(base_model) else None
    if config_file is None or not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get("max_position_embeddings")
    return value if isinstance(value, int) and value > 0 else None


def default_max_length(base_model: str | Path) -> int:
    """The longest row a build keeps when no length is set: the base model's context, at most
    MAX_LENGTH_CAP; FALLBACK_MAX_LENGTH when the context is not known."""
    context = context_length(base_model)
    if context is None:
        log.info(
            "no context length readable for base model %r; rows up to %d tokens", str(base_model), FALLBACK_MAX_LENGTH
        )
        return FALLBACK_MAX_LENGTH
    return min(context, MAX_LENGTH_CAP)


def model_name(spec: str | Path) -> str:
    """The model a spec names, without where it lives: `/data/models/Qwen3-4B`, `Qwen/Qwen3-4B`
    and `Qwen3-4B/` are all `Qwen3-4B`."""
    return str(spec).rstrip("/").rsplit("/", 1)[-1]
