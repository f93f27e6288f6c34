"""Speculative decoding by prompt lookup: the proposer, and the engine's output unchanged by it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tracewheel.inference.config import InferenceSettings
from tracewheel.inference.engine import Engine, SamplingParams
from tracewheel.inference.engine.prefix_cache import PrefixCache
from tracewheel.inference.engine.speculative import propose
from tracewheel.inference.vllm_backend import vllm_command

GREEDY = SamplingParams(max_tokens=30, temperature=0.0)
# the tiny random model repeats itself; these prompts hold n-grams it follows and ones it leaves
PROMPTS = ("lamp   kettle   chair   lamp   kettle", "the price is 5 5 5 and 6 6 6 7", "ab ab ab ab ab cd")


def test_propose_continues_the_latest_match_of_the_longest_tail() -> None:
    #         0  1  2  3  4  5  6  7  8  9
    context = [1, 2, 3, 9, 1, 2, 3, 8, 7, 2, 3]
    # tail (2, 3) occurs at 1 and 5; the latest (5) is followed by 8 7 2 3
    assert propose(context, 3, max_ngram=2, min_ngram=1) == [8, 7, 2]
    # the longest tail wins: (7, 2, 3) is not earlier, (2, 3) is
    assert propose(context, 2, max_ngram=3, min_ngram=2) == [8, 7]
    assert propose([*context, 4], 3, max_ngram=3, min_ngram=1) == []  # 4 never occurred before
    assert propose([5, 5, 5], 4, max_ngram=2, min_ngram=1) == [5]  # the match overlapping the tail
    assert propose([1, 2], 4, max_ngram=4, min_ngram=2) == []  # too short for a tail of two and a match
    assert propose(context, 0, max_ngram=2, min_ngram=1) == []


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def speculating(model_and_tokenizer: tuple[Any, Any]) -> Iterator[Engine]:
    engine = Engine(*model_and_tokenizer, prefix_cache=PrefixCache(), speculative_tokens=4, prompt_lookup_min=1)
    yield engine.start()
    engine.stop()


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_greedy_output_equals_hf_generate_with_drafts_accepted_and_rejected(
    speculating: Engine, model_and_tokenizer: tuple[Any, Any]
) -> None:
    model, tokenizer = model_and_tokenizer
    for text in PROMPTS:
        prompt = ids(tokenizer, text)
        out, result = speculating.generate_blocking(prompt, GREEDY)
        with torch.inference_mode():
            reference = model.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False)
        assert out == tokenizer.decode(reference[0][len(prompt) :]), text
        assert (result.finish_reason, result.completion_tokens) == ("length", 30)
    assert 0 < speculating.accepted < speculating.drafted  # both paths ran: drafts kept and drafts thrown away


def test_a_batch_of_speculating_and_sampling_rows_gives_what_each_gives_alone(
    speculating: Engine, model_and_tokenizer: tuple[Any, Any]
) -> None:
    model, tokenizer = model_and_tokenizer
    sampled = SamplingParams(max_tokens=20, temperature=1.0, top_p=0.9, seed=3)
    requests = [(ids(tokenizer, text), GREEDY) for text in PROMPTS] + [(ids(tokenizer, "pick any words"), sampled)]
    plain = Engine(model, tokenizer).start()
    try:
        alone = [plain.generate_blocking(prompt, params)[0] for prompt, params in requests]
    finally:
        plain.stop()
    texts: list[list[str]] = [[] for _ in requests]
    done = [threading.Event() for _ in requests]
    for i, (prompt, params) in enumerate(requests):
        speculating.submit(prompt, params, None, texts[i].append, lambda _r, i=i: done[i].set())
    assert all(event.wait(60) for event in done)
    assert ["".join(t) for t in texts] == alone
    assert speculating.accepted > 0


def test_rows_with_different_adapters_speculate_in_one_batch(
    model_and_tokenizer: tuple[Any, Any], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from tracewheel.inference.adapters import ModelRegistry, PeftAdapters

    from ..conftest import make_adapter

    tokenizer = model_and_tokenizer[1]
    engines = []
    for drafts in (0, 4):  # one engine (and model) each: adapters are loaded into the model
        engine = Engine(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(),
            tokenizer,
            speculative_tokens=drafts,
            prompt_lookup_min=1,
        ).start()
        registry = ModelRegistry(PeftAdapters(engine), "tiny")
        for name, seed in (("a1", 1), ("a2", 2)):
            registry.load(name, str(make_adapter(tiny_model_dir, tmp_path / name, seed)))
        engines.append(engine)
    plain, speculating = engines
    try:
        requests = [(ids(tokenizer, text), adapter) for text in PROMPTS for adapter in (None, "a1", "a2")]
        alone = [plain.generate_blocking(prompt, GREEDY, adapter)[0] for prompt, adapter in requests]
        texts: list[list[str]] = [[] for _ in requests]
        done = [threading.Event() for _ in requests]
        for i, (prompt, adapter) in enumerate(requests):
            speculating.submit(prompt, GREEDY, adapter, texts[i].append, lambda _r, i=i: done[i].set())
        assert all(event.wait(60) for event in done)
    finally:
        for engine in engines:
            engine.stop()
    assert ["".join(t) for t in texts] == alone
    assert speculating.accepted > 0


def test_max_tokens_and_stop_strings_hold_when_drafts_run_past_them(
    speculating: Engine, model_and_tokenizer: tuple[Any, Any]
) -> None:
    tokenizer = model_and_tokenizer[1]
    prompt = ids(tokenizer, PROMPTS[2])
    full, _ = speculating.generate_blocking(prompt, GREEDY)
    for limit in (1, 2, 5):
        text, result = speculating.generate_blocking(prompt, SamplingParams(max_tokens=limit, temperature=0.0))
        assert (result.finish_reason, result.completion_tokens) == ("length", limit)
        assert full.startswith(text)
    stop = full[7:10]
    cut, result = speculating.generate_blocking(prompt, SamplingParams(max_tokens=30, temperature=0.0, stop=[stop]))
    assert result.finish_reason == "stop"
    assert cut == full[: full.index(stop)]


def test_bad_speculation_settings_are_refused(model_and_tokenizer: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="speculative_tokens must be 0"):
        Engine(*model_and_tokenizer, speculative_tokens=-1)
    with pytest.raises(ValueError, match="prompt_lookup_min <= prompt_lookup_max"):
        Engine(*model_and_tokenizer, speculative_tokens=3, prompt_lookup_min=5, prompt_lookup_max=2)


def test_vllm_gets_the_same_speculation_as_its_ngram_config() -> None:
    settings = InferenceSettings(backend="vllm", speculative_tokens=5)
    command = vllm_command(settings, "Qwen/Qwen3-4B", "qwen3-4b")
    config = command[command.index("--speculative-config") + 1]
    assert config == '{"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4, "prompt_lookup_min": 2}'
    assert "--speculative-config" not in vllm_command(InferenceSettings(backend="vllm"), "m", "m")
