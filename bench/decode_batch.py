"""Decode throughput of the CPU engine's batch by batch size: how many agents should share it.

    .venv/bin/python bench/decode_batch.py [--model SmolLM2-135M-Instruct|PATH] [--context 2000] [--steps 12]
        [--batches 1,2,4,8,10] [--widths 1] [--attention engine,sdpa]

A decode step reads every weight once whatever the batch, and each row's keys and values: on a
2-core CPU both are memory-bound, so a bigger batch makes more tokens per second until the rows'
caches outweigh the weights. Each batch size runs the engine's decode path (a `growing_cache` of
`--context` tokens per row, left-padding mask, `logits_to_keep=1`, fp32 as served) for `--steps`
steps, median step time after two warm-up steps, all in one process one after the other. The
demo's agents send ~45-token tool calls after prompts of 1-4k tokens (docs/demo.md).

`--widths` also times steps that feed several tokens per row, as speculative decoding does to
verify its drafts (engine/speculative.py): what a step costs per extra draft token decides how
many drafts pay, given how many are accepted (bench/speculative.py). `--attention` compares
the engine's grouped-query attention (engine/attention.py) with transformers' `sdpa`, which
copies keys and values per query head when a step has a mask and several query tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.inference.engine.attention import use_gqa_attention
from tracewheel.inference.engine.kv import cache_kv, growing_cache
from tracewheel.inference.model_store import resolve_model


def step_seconds(model: torch.nn.Module, prefix: list, batch: int, context: int, steps: int, width: int = 1) -> float:
    """Median seconds of one decode step for `batch` rows of `context` cached tokens, `width`
    tokens fed per row."""
    cache = growing_cache([(k.repeat(batch, 1, 1, 1), v.repeat(batch, 1, 1, 1)) for k, v in prefix])
    tokens = torch.randint(0, model.config.vocab_size, (batch, width))
    times = []
    for step in range(steps + 2):
        start = context + step * width
        started = time.perf_counter()
        model(
            input_ids=tokens,
            position_ids=(start + torch.arange(width)).expand(batch, width),
            attention_mask=torch.ones(batch, start + width, dtype=torch.long),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=width,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--context", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batches", default="1,2,4,8,10")
    parser.add_argument("--widths", default="1", help="tokens fed per row per step (1: plain decoding)")
    parser.add_argument("--attention", default="engine", help="engine (grouped-query SDPA), sdpa, or both")
    args = parser.parse_args()
    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    models = {}
    for name in args.attention.split(","):
        models[name] = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        if name == "engine":
            use_gqa_attention(models[name])
        elif name != "sdpa":
            parser.error(f"--attention: {name!r} is neither engine nor sdpa")
    model = next(iter(models.values()))
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model(input_ids=torch.randint(0, model.config.vocab_size, (1, args.context)), use_cache=True)
        prefix = list(cache_kv(out.past_key_values))
        print(f"model {model_dir.name}, {args.context} cached tokens per row, torch threads {torch.get_num_threads()}")
        print(f"{'attention':>9} {'batch':>5} {'width':>5} {'ms/step':>8} {'positions/s':>11} {'ratio':>6}")
        first = None
        for batch in (int(b) for b in args.batches.split(",")):
            for width in (int(w) for w in args.widths.split(",")):
                for name, timed in models.items():
                    seconds = step_seconds(timed, prefix, batch, args.context, args.steps, width)
                    rate = batch * width / seconds
                    first = first or rate
                    print(f"{name:>9} {batch:5d} {width:5d} {seconds * 1000:8.1f} {rate:11.1f} {rate / first:6.2f}")


if __name__ == "__main__":
    main()
