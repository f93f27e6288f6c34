"""Builds the embedded serving state from settings: model, tokenizer and template, engine."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tracewheel.core.errors import ConfigError
from tracewheel.inference.adapters import ModelRegistry, PeftAdapters
from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.engine import Engine
from tracewheel.inference.engine.prefix_cache import PrefixCache
from tracewheel.inference.model_store import DEFAULT_MODEL, resolve_model, served_chat_format
from tracewheel.inference.openai_api import ServingState
from tracewheel.inference.parsers.registry import get_reasoning_parser, get_tool_parser

log = logging.getLogger(__name__)


def _load_tokenizer(model_dir: Path, template: str | None) -> Any:
    """The model's tokenizer with the serving template (when one is set) as its chat template.

    Raises:
        ConfigError: the tokenizer ends up with no chat template.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if template is not None:
        tokenizer.chat_template = template
    if not tokenizer.chat_template:
        raise ConfigError(f"{model_dir} has no chat template; set TW_INFERENCE_CHAT_TEMPLATE")
    return tokenizer


def _start_engine(model: Any, tokenizer: Any, settings: InferenceSettings) -> Engine:
    """The started engine, stopping at the tokenizer's end-of-sequence and `<|im_end|>` tokens."""
    stop_ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None, tokenizer.unk_token_id}
    return Engine(
        model,
        tokenizer,
        max_batch=settings.max_batch,
        prefix_cache=PrefixCache(settings.prefix_cache_tokens) if settings.prefix_cache_tokens else None,
        stop_token_ids=stop_ids,
        speculative_tokens=settings.speculative_tokens,
        merge_adapters=settings.merge_adapters,
        max_waiting=settings.max_waiting_requests,
    ).start()


def build_state(settings: InferenceSettings) -> ServingState:
    """Loads the model and starts the engine (the caller stops it).

    Raises:
        ConfigError: unknown parser names, a bad template setting or model spec.
    """
    import torch
    from transformers import AutoModelForCausalLM

    chat = served_chat_format(settings)
    for name, lookup in ((chat.tool_call_parser, get_tool_parser), (chat.reasoning_parser, get_reasoning_parser)):
        if name:
            lookup(name)  # fail at start-up, not at the first request
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    template = chat.serving_template
    model_dir = resolve_model(settings.model, settings.home / "models", template)
    started = time.perf_counter()
    tokenizer = _load_tokenizer(model_dir, template)
    dtype = torch.bfloat16 if settings.dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    log.info(
        "loaded %s (%s) in %.2f s; chat format of family %s, parsers %s + %s",
        model_dir,
        dtype,
        time.perf_counter() - started,
        chat.family or "none (the tokenizer's template)",
        chat.tool_call_parser or "no tool parser",
        chat.reasoning_parser or "no reasoning parser",
    )
    engine = _start_engine(model, tokenizer, settings)
    served_name = settings.served_model_name or (DEFAULT_MODEL if settings.model == DEFAULT_MODEL else model_dir.name)
    return ServingState(
        engine=engine,
        registry=ModelRegistry(
            PeftAdapters(engine), served_name, aliases={settings.deploy_alias: served_name}, base_model=str(model_dir)
        ),
        tool_parser=chat.tool_call_parser or None,
        reasoning_parser=chat.reasoning_parser or None,
        default_max_tokens=settings.default_max_tokens,
        trust_request_chat_template=settings.trust_request_chat_template,
    )
