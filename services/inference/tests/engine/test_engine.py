"""The CPU engine on the tiny model: exactness against HF generate, batching, prefix cache, stops."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tracewheel.inference.engine import Engine, SamplingParams
from tracewheel.inference.engine.core import GenerationResult
from tracewheel.inference.engine.prefix_cache import PrefixCache

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def engine(model_and_tokenizer: tuple[Any, Any]) -> Iterator[Engine]:
    model, tokenizer = model_and_tokenizer
    engine = Engine(model, tokenizer, prefix_cache=PrefixCache(max_tokens=4096)).start()
    yield engine
    engine.stop()


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_greedy_output_equals_hf_generate(engine: Engine, model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    prompt = ids(tokenizer, "The shop sells kettles, lamps and chairs.")
    text, result = engine.generate_blocking(prompt, GREEDY)
    with torch.inference_mode():
        reference = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)
    assert text == tokenizer.decode(reference[0][len(prompt) :])
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == ("length", len(prompt), 12)


def test_concurrent_requests_are_batched_and_equal_to_one_at_a_time(
    engine: Engine, model_and_tokenizer: tuple[Any, Any]
) -> None:
    tokenizer = model_and_tokenizer[1]
    prompts = [ids(tokenizer, f"request {i}: " + "word " * (3 * i + 1)) for i in range(5)]
    alone = [engine.generate_blocking(p, GREEDY)[0] for p in prompts]
    texts: list[list[str]] = [[] for _ in prompts]
    done = [threading.Event() for _ in prompts]
    for i, prompt in enumerate(prompts):
        engine.submit(prompt, GREEDY, None, texts[i].append, lambda _r, i=i: done[i].set())
    assert all(event.wait(60) for event in done)
    assert ["".join(t) for t in texts] == alone


def test_prefix_cache_reuses_the_shared_prefix_without_changing_the_output(
    model_and_tokenizer: tuple[Any, Any],
) -> None:
    model, tokenizer = model_and_tokenizer
    prefix = ids(tokenizer, "system: you have tools. " * 20)
    step_two = prefix + ids(tokenizer, " user: next step please")
    cold = Engine(model, tokenizer, prefix_cache=None).start()
    warm = Engine(model, tokenizer, prefix_cache=PrefixCache()).start()
    try:
        expected, cold_result = cold.generate_blocking(step_two, GREEDY)
        warm.generate_blocking(prefix, GREEDY)
        text, result = warm.generate_blocking(step_two, GREEDY)
    finally:
        cold.stop()
        warm.stop()
    assert text == expected
    assert cold_result.cached_tokens == 0
    assert result.cached_tokens == len(prefix)


def test_stop_strings_cut_the_text_and_seeds_make_sampling_repeatable(
    engine: Engine, model_and_tokenizer: tuple[Any, Any]
) -> None:
    tokenizer = model_and_tokenizer[1]
    prompt = ids(tokenizer, "count with me")
    full, _ = engine.generate_blocking(prompt, GREEDY)
    stop = full[3:6]
    cut, result = engine.generate_blocking(prompt, SamplingParams(max_tokens=12, temperature=0.0, stop=[stop]))
    assert result.finish_reason == "stop"
    assert cut == full[: full.index(stop)]
    sampled = SamplingParams(max_tokens=8, temperature=1.0, top_p=0.9, seed=7)
    assert engine.generate_blocking(prompt, sampled)[0] == engine.generate_blocking(prompt, sampled)[0]


def test_a_cancelled_request_finishes_as_cancelled(engine: Engine, model_and_tokenizer: tuple[Any, Any]) -> None:
    tokenizer = model_and_tokenizer[1]
    results: list[GenerationResult] = []
    done = threading.Event()
    first_text = threading.Event()
    handle = engine.submit(
        ids(tokenizer, "a long answer"),
        SamplingParams(max_tokens=4000, temperature=0.0),
        None,
        lambda _t: first_text.set(),
        lambda r: (results.append(r), done.set()),
    )
    assert first_text.wait(30)
    handle.cancel()
    assert done.wait(30)
    assert results[0].finish_reason == "cancelled"
    assert results[0].completion_tokens < 4000


def test_rows_with_different_adapters_share_a_batch(
    model_and_tokenizer: tuple[Any, Any], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters

    from ..conftest import make_adapter

    tokenizer = model_and_tokenizer[1]
    engine = Engine(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer).start()
    try:
        registry = ModelRegistry(PeftAdapters(engine), "tiny")
        for name, seed in (("a1", 1), ("a2", 2)):
            registry.load(name, str(make_adapter(tiny_model_dir, tmp_path / name, seed)))
        prompt = ids(tokenizer, "the same prompt for everyone")
        adapters = [None, "a1", "a2", "a1"]
        alone = [engine.generate_blocking(prompt, GREEDY, adapter)[0] for adapter in adapters]
        texts: list[list[str]] = [[] for _ in adapters]
        done = [threading.Event() for _ in adapters]
        for i, adapter in enumerate(adapters):
            engine.submit(prompt, GREEDY, adapter, texts[i].append, lambda _r, i=i: done[i].set())
        assert all(event.wait(60) for event in done)
    finally:
        engine.stop()
    assert ["".join(t) for t in texts] == alone
    assert len({alone[0], alone[1], alone[2]}) == 3  # each adapter really changes the output


@pytest.mark.parametrize("name", ["train", "eval", "to", "my.adapter"])
def test_an_adapter_name_peft_cannot_hold_is_a_clear_error(
    model_and_tokenizer: tuple[Any, Any], tiny_model_dir: Path, tmp_path: Path, name: str
) -> None:
    from tracewheel.core.errors import InvalidArgument
    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters

    from ..conftest import make_adapter

    registry = ModelRegistry(PeftAdapters(Engine(*model_and_tokenizer)), "tiny")
    with pytest.raises(InvalidArgument, match=f"adapter name '{re.escape(name)}' cannot be served"):
        registry.load(name, str(make_adapter(tiny_model_dir, tmp_path / "a", 1)))
    assert registry.adapters == {}


def test_a_dora_adapter_is_refused_at_load_with_the_reason(
    model_and_tokenizer: tuple[Any, Any], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracewheel.core.errors import InvalidArgument
    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters

    dora = LoraConfig(r=4, target_modules="all-linear", use_dora=True)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), dora).save_pretrained(tmp_path / "dora")
    registry = ModelRegistry(PeftAdapters(Engine(*model_and_tokenizer)), "tiny")
    with pytest.raises(InvalidArgument, match="is a DoRA adapter"):
        registry.load("d", str(tmp_path / "dora"))
    assert registry.adapters == {}
