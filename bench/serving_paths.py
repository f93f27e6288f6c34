"""How the CPU engine runs an adapter: PEFT's per-row path, merged weights, and bf16, on the
demo's own requests.

    .venv/bin/python bench/serving_paths.py ADAPTER_DIR [--tasks 5] [--agents 4] [--drafts 3]

Replays the held-out suite's reference solutions as bench/speculative.py does (every assistant
turn becomes the request the agent would send, four agents at once, greedy, the demo's three
draft tokens) and serves them with one adapter loaded, three ways in one run:

- `peft fp32`: every forward through PEFT's mixed-batch path (`adapter_names`), fp32; what the
  engine did before merged weights (`TW_INFERENCE_MERGE_ADAPTERS=false`);
- `merged fp32`: forwards whose rows share the adapter on its merged weights (engine/merging.py);
- `merged bf16`: the same with the model in bfloat16 (`TW_INFERENCE_DTYPE=bfloat16`).

Prints per setting: wall time, completion tokens/s, the speed-up over `peft fp32`, and how many
outputs differ from it (merging rounds differently; bf16 rounds much more coarsely).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from speculative import serve, task_requests

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.inference.engine import Engine
from tracewheel.inference.engine.prefix_cache import PrefixCache
from tracewheel.inference.model_store import resolve_model

ADAPTER = "bench"
SETTINGS = (
    ("peft fp32", False, torch.float32),
    ("merged fp32", True, torch.float32),
    ("merged bf16", True, torch.bfloat16),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", type=Path, help="a LoRA adapter folder (a demo round's)")
    parser.add_argument("--tasks", type=int, default=5, help="held-out tasks (5: one per template)")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--drafts", type=int, default=3, help="speculative draft tokens (the demo's 3)")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    args = parser.parse_args()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    template = load_template(SERVING_TEMPLATE)
    model_dir = resolve_model(args.model, home / "models", template)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = template
    tasks = task_requests(tokenizer, args.tasks)
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None}
    print(f"{sum(map(len, tasks))} requests from {len(tasks)} held-out tasks, {args.agents} agents at once")
    print("| setting | wall s | completion tokens/s | speed-up | outputs that differ |")
    print("|---|---|---|---|---|")
    baseline: tuple[float, list[str]] | None = None
    for label, merge, dtype in SETTINGS:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
        model = PeftModel.from_pretrained(model, str(args.adapter), adapter_name=ADAPTER).eval()
        engine = Engine(
            model,
            tokenizer,
            max_batch=8,
            prefix_cache=PrefixCache(),
            stop_token_ids=stop,
            speculative_tokens=args.drafts,
            merge_adapters=merge,
        ).start()
        try:
            wall, outputs, tokens = serve(engine, tasks, ADAPTER, args.agents)
        finally:
            engine.stop()
        baseline = baseline or (wall, outputs)
        differ = sum(a != b for a, b in zip(outputs, baseline[1], strict=True))
        print(
            f"| {label} | {wall:.1f} | {tokens / wall:.1f} | {baseline[0] / wall:.2f}x | {differ} of {len(outputs)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
