"""Decode-step time of the engine's batch: a KV cache rebuilt every step vs one grown in place.

    .venv/bin/python bench/decode_cache.py [--model SmolLM2-135M-Instruct|PATH] [--batch 4] [--steps 20]

A fresh `DynamicCache(ddp_cache_data=kv)` every decode step costs two copies of every layer's
keys and values per generated token: transformers copies the tensors into it and then appends
the new token with `torch.cat`. The engine keeps a `growing_cache` (engine/kv.py) across steps
instead. Both are run here side by side on the same
left-padded batch, at context lengths an agent reaches (its prompt grows by a page snapshot
per step), and their logits are compared (they must be equal).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, DynamicCache

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.inference.engine.kv import cache_kv, growing_cache
from tracewheel.inference.model_store import resolve_model


def decode(model, prefix, first: torch.Tensor, context: int, steps: int, grow: bool) -> tuple[float, torch.Tensor]:
    """Seconds per decode step and the logits of every step (greedy)."""
    batch = first.shape[0]
    cache = growing_cache(prefix) if grow else None
    kv, tokens, logits = prefix, first, []
    started = time.perf_counter()
    for step in range(steps):
        out = model(
            input_ids=tokens,
            position_ids=torch.full((batch, 1), context + step),
            attention_mask=torch.ones(batch, context + step + 1, dtype=torch.long),
            past_key_values=cache if grow else DynamicCache(ddp_cache_data=kv),
            use_cache=True,
            logits_to_keep=1,
        )
        if not grow:
            kv = cache_kv(out.past_key_values)
        logits.append(out.logits[:, -1])
        tokens = out.logits[:, -1].argmax(-1, keepdim=True)
    return (time.perf_counter() - started) / steps, torch.stack(logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--contexts", default="256,1024,2048,4096")
    args = parser.parse_args()
    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    print(f"model {model_dir.name}, batch {args.batch}, {args.steps} steps, torch threads {torch.get_num_threads()}")
    print(f"{'context':>8} {'rebuilt, ms/step':>17} {'grown, ms/step':>15} {'speed-up':>9} {'max |logit diff|':>17}")
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for context in (int(c) for c in args.contexts.split(",")):
            ids = torch.randint(100, 40000, (1, context), generator=generator)
            prefix = [
                (k.repeat(args.batch, 1, 1, 1), v.repeat(args.batch, 1, 1, 1))
                for k, v in cache_kv(model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values)
            ]
            first = torch.randint(100, 40000, (args.batch, 1), generator=generator)
            decode(model, prefix, first, context, 2, grow=False)  # warm-up
            rebuilt, old = decode(model, prefix, first, context, args.steps, grow=False)
            grown, new = decode(model, prefix, first, context, args.steps, grow=True)
            diff = (new - old).abs().max().item()
            print(f"{context:8d} {rebuilt * 1e3:17.1f} {grown * 1e3:15.1f} {rebuilt / grown:8.2f}x {diff:17.2e}")


if __name__ == "__main__":
    main()
