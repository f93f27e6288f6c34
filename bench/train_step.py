"""One LoRA training step on CPU: precision, activation checkpointing and LM head, side by side.

    .venv/bin/python bench/train_step.py [--model SmolLM2-135M-Instruct|PATH] [--tokens 2048]

A row of `--tokens` random tokens (loss on the last 15 %, like an agent row's answers), LoRA r=16
on all linear layers, AdamW; forward, backward and optimizer step, best of two timed steps after
a warm-up. Each configuration runs in its own subprocess, so its peak RSS is its own:
- fp32 with activation checkpointing (what the demo used before: memory-safe, slow);
- fp32 without (TRL's CPU default);
- bf16 autocast without checkpointing (fast only on a CPU with bf16 instructions:
  AVX512-BF16 or AMX; `demo_profiles.cpu_computes_bf16`);
then three ways of computing the loss, each bf16 without checkpointing:
- the model's own loss (the full `(tokens, vocab)` logits; the rows above);
- TRL's fused LM head (`trl.trainer.utils.add_fused_lm_head`, what SFTTrainer uses: chunked, but
  on CPU it scores every position);
- the head on labelled positions only (`logits_to_keep`, what `trainer/loss.py` does);
then the labelled head with LoRA dropout 0.05 (the default recipe's; PEFT applies it to each
adapted layer's input, a copy of the activations per layer, where dropout 0 skips it);
then a packed prefix-tree row of the same length (a windowed trace's per-turn rows, docs/dataset.md:
eight segments, each after the first hanging off a token half a segment back), trained through
its 4D attention mask (`trainer/prefix_tree.py`): SDPA with an explicit mask, not its fused
causal kernel; then the same row with the inference engine's grouped-query SDPA
(`inference/engine/attention.py`, head `tree-gqa`), which passes grouped key-value heads with the
mask instead of transformers' per-head copies. `--only labelled,tree` runs a subset (by loss
head). `--profile N` prints, for each configuration, the N operators that took the most time
in one more step (torch.profiler): where a step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# (precision, activation checkpointing, loss head, LoRA dropout)
CONFIGS = [("fp32", True, "model", 0.0), ("fp32", False, "model", 0.0), ("bf16", False, "model", 0.0)]
CONFIGS += [("bf16", False, "trl", 0.0), ("bf16", False, "labelled", 0.0), ("bf16", False, "labelled", 0.05)]
CONFIGS += [("bf16", False, "tree", 0.0), ("bf16", False, "tree-gqa", 0.0)]


def tree_parents(tokens: int, segments: int = 8) -> list[int]:
    """Parents of a packed row shaped like the demo's: each segment after the first continues from
    half a segment before its start (the previous page, replaced by a stub in the next row)."""
    size = tokens // segments
    parents = list(range(-1, tokens - 1))
    for start in range(size, tokens, size):
        parents[start] = start - 1 - size // 2
    return parents


def _loss(model: object, ids: object, labels: object, head: str) -> object:
    import torch.nn.functional as F

    if head == "model":
        return model(input_ids=ids, labels=labels).loss  # type: ignore[operator]
    if head == "trl":
        return model(input_ids=ids, labels=labels, fused_lm_head=True).loss  # type: ignore[operator]
    targets = labels[:, 1:]  # type: ignore[index]
    keep = (targets != -100).any(0).nonzero().squeeze(1)
    tree: dict[str, object] = {}
    if head in ("tree", "tree-gqa"):
        from tracewheel.trainer.prefix_tree import TREE_MASK_KEY, PrefixTreeCollator

        row = ids[0].tolist()  # type: ignore[index]
        parents = tree_parents(len(row))
        positions = [0] * len(row)
        for index, parent in enumerate(parents):
            positions[index] = positions[parent] + 1 if parent >= 0 else 0
        example = {"input_ids": row, "labels": row, "position_ids": positions, "parents": parents}
        batch = PrefixTreeCollator(0)([example])
        tree = {"attention_mask": batch[TREE_MASK_KEY], "position_ids": batch["position_ids"]}
    logits = model(input_ids=ids, logits_to_keep=keep, **tree).logits  # type: ignore[operator]
    return F.cross_entropy(logits.float().transpose(1, 2), targets[:, keep])


def worker(
    model_dir: str,
    precision: str,
    checkpointing: bool,
    head: str,
    dropout: float,
    tokens: int,
    profile: int = 0,
) -> dict[str, float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if head == "tree-gqa":
        from tracewheel.inference.engine.attention import use_gqa_attention

        use_gqa_attention(model)
    if head == "trl":
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(model)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout, target_modules="all-linear"))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    labels = ids.clone()
    labels[:, : int(tokens * 0.85)] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = _loss(model, ids, labels, head)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - started

    best = min([step() for _ in range(3)][1:])
    if profile:
        with torch.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile), file=sys.stderr)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"seconds": best, "tokens_per_s": tokens / best, "peak_rss_gb": peak_gb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--tokens", type=int, default=2048)
    heads = "model,trl,labelled,tree,tree-gqa"
    parser.add_argument("--only", default="", help=f"comma-separated loss heads to run ({heads})")
    parser.add_argument("--profile", type=int, default=0, help="print the N operators that took most time")
    parser.add_argument("--worker", nargs=4, metavar=("PRECISION", "CKPT", "HEAD", "DROPOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        precision, checkpointing, head, dropout = args.worker
        result = worker(args.model, precision, checkpointing == "1", head, float(dropout), args.tokens, args.profile)
        print(json.dumps(result))
        return
    from tracewheel.cli.demo_profiles import cpu_computes_bf16
    from tracewheel.core.chat import SERVING_TEMPLATE, load_template
    from tracewheel.inference.model_store import resolve_model

    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    print(f"model {model_dir.name}, {args.tokens} tokens per row, CPU bf16 instructions: {cpu_computes_bf16()}")
    print(f"{'configuration':80} {'s/step':>8} {'tokens/s':>9} {'ratio':>7} {'peak RSS GB':>12}")
    first = None
    only = set(args.only.split(",")) - {""}
    for precision, checkpointing, head, dropout in CONFIGS:
        if only and head not in only:
            continue
        command = [sys.executable, __file__, "--model", str(model_dir), "--tokens", str(args.tokens)]
        command += ["--profile", str(args.profile)]
        command += ["--worker", precision, "1" if checkpointing else "0", head, str(dropout)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        first = first or result["tokens_per_s"]
        name = f"{precision}, checkpointing {'on' if checkpointing else 'off'}, {head} loss"
        name = name.replace("tree loss", "labelled loss, prefix-tree row")
        name = name.replace("tree-gqa loss", "labelled loss, prefix-tree row, grouped-query SDPA")
        name += f", LoRA dropout {dropout:g}" if dropout else ""
        ratio = result["tokens_per_s"] / first
        seconds, rate, peak = result["seconds"], result["tokens_per_s"], result["peak_rss_gb"]
        print(f"{name:80} {seconds:8.2f} {rate:9.0f} {ratio:7.2f} {peak:12.2f}")
        if args.profile:
            lines = done.stderr.splitlines()
            first_rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
            print("\n".join(line for line in lines[first_rule:] if line.strip()))


if __name__ == "__main__":
    main()
