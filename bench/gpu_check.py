"""The CUDA path in one run: a QLoRA training of a few steps, then the merged export.

    .venv/bin/python bench/gpu_check.py [--model PATH] [--steps 4] [--out DIR]

On a CUDA machine with the trainer's `gpu` extra (bitsandbytes): trains the recipe's CUDA
defaults (4-bit NF4 base with double quantization, bf16 compute, paged 8-bit AdamW, gradient
checkpointing; `Recipe.for_device`) on a few generated agent rows, on the tiny test model (a
random 2-layer Qwen3 on SmolLM2's tokenizer, built on the spot) or on `--model`, a local model
folder. Then merges the adapter into the base model in bf16 (trainer/export.py) and compares the
merged model's logits on one prompt with the bf16 base + adapter (PEFT), which should agree up
to bf16 rounding, and with the 4-bit base + adapter (what training saw; the gap is the
quantization's). Prints one JSON line per phase: step time (the mean after the first step),
peak GPU memory, export time, the logits differences. Without CUDA it says so and exits 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

URL_PARAMETERS = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "browser_navigate", "description": "Open a URL", "parameters": URL_PARAMETERS},
    }
]


def agent_row(i: int) -> dict[str, Any]:
    """One agent run as a TRL row: a tool call, its result, the answer."""
    call = {"id": f"call-{i}", "type": "function",
            "function": {"name": "browser_navigate", "arguments": json.dumps({"url": f"http://site/{i}"})}}  # fmt: skip
    messages = [
        {"role": "system", "content": "You are a browser agent."},
        {"role": "user", "content": f"Open page {i} and tell me its title."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call-{i}", "name": "browser_navigate", "content": f"Title {i}"},
        {"role": "assistant", "content": f"The title is Title {i}."},
    ]
    return {"messages": messages, "tools": json.dumps(TOOLS)}


def write_dataset(folder: Path, rows: int) -> Path:
    from tracewheel.core.dataset_layout import Manifest, SplitCounts, jsonl_file, write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, Manifest(version="gpu-check", rows=SplitCounts(train=rows)))
    lines = "".join(json.dumps(agent_row(i)) + "\n" for i in range(rows))
    (folder / jsonl_file("train")).write_text(lines, encoding="utf-8")
    return folder


def report(phase: str, **figures: Any) -> None:
    print(json.dumps({"phase": phase, **figures}), flush=True)


def train_qlora(model_dir: Path, dataset_dir: Path, job_dir: Path, steps: int) -> Path:
    import torch

    from tracewheel.trainer.recipe import Recipe
    from tracewheel.trainer.train import Progress, train

    recipe = Recipe(lora_r=8, lora_alpha=16, max_steps=steps, save_steps=steps, eval=False, learning_rate=1e-3)
    stamps: list[float] = []

    def on_progress(progress: Progress) -> None:
        if progress.phase == "training":
            stamps.append(time.perf_counter())

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = train(dataset_dir, model_dir, job_dir, recipe, on_progress)
    total_s = time.perf_counter() - started
    steps_after_first = [b - a for a, b in itertools.pairwise(stamps)]
    step_s = sum(steps_after_first) / len(steps_after_first) if steps_after_first else None
    resolved = recipe.for_device(True)
    report("qlora", model=str(model_dir), steps=result.global_step, train_loss=result.train_loss,
           load_in_4bit=resolved.load_in_4bit, optim=resolved.optim, bf16=resolved.bf16, step_s=step_s,
           total_s=total_s, peak_gpu_memory_gib=torch.cuda.max_memory_allocated() / 2**30)  # fmt: skip
    return result.adapter_dir


def _logits(model: Any, ids: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(ids.to(model.device)).logits.float().cpu()


def export_and_compare(model_dir: Path, adapter_dir: Path, out: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tracewheel.trainer.export import export_merged, export_source
    from tracewheel.trainer.qlora import quantization_config
    from tracewheel.trainer.recipe import Recipe

    started = time.perf_counter()
    export_merged(export_source("gpu-check", adapter_dir), out)
    export_s = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(out)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Open page 3."}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    ids = tokenizer(text, return_tensors="pt").input_ids
    merged = _logits(AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16, device_map="cuda"), ids)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map="cuda")
    unmerged = _logits(PeftModel.from_pretrained(base, adapter_dir).eval(), ids)
    quantized = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=quantization_config(Recipe().for_device(True)), device_map="cuda"
    )
    trained = _logits(PeftModel.from_pretrained(quantized, adapter_dir).eval(), ids)
    report("export", out=str(out), export_s=export_s, files=sorted(p.name for p in out.iterdir()),
           max_abs_logit_diff_vs_bf16_base_plus_adapter=float((merged - unmerged).abs().max()),
           max_abs_logit_diff_vs_4bit_base_plus_adapter=float((merged - trained).abs().max()),
           logit_scale=float(unmerged.abs().max()))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a local HF model folder (default: the tiny test model)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps to train")
    parser.add_argument("--rows", type=int, default=16, help="generated agent rows to train on")
    parser.add_argument("--out", type=Path, help="where to leave the job and the merged export (default: a temp dir)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and torch sees none here; run it on a CUDA machine with the trainer's "
              "gpu extra (pip install 'tracewheel-trainer[gpu]')", file=sys.stderr)  # fmt: skip
        return 2
    report("device", gpu=torch.cuda.get_device_name(0), torch=torch.__version__)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        work = args.out or Path(scratch)
        model_dir = args.model
        if model_dir is None:
            from tracewheel.inference.testing import TEST_CACHE, tiny_test_model

            model_dir = tiny_test_model()
            report("model", built=str(model_dir), cache=str(TEST_CACHE))
        adapter_dir = train_qlora(model_dir, write_dataset(work / "dataset", args.rows), work / "job", args.steps)
        export_and_compare(model_dir, adapter_dir, work / "merged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
