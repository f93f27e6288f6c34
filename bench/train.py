"""Trainer throughput: this project's recipe vs the Trelis workshop recipe, same traces, same model.

    .venv/bin/python bench/train.py [--traces 24] [--model SmolLM2-135M-Instruct|PATH]

Generated agent traces (two user queries, each answered by two browser tool calls with reasoning,
then a final answer). One epoch of LoRA SFT on CPU for each recipe, each in its own subprocess
(so peak RSS is its own):
- tracewheel: the default recipe (batch 1 x 4 accumulation), rows unrolled at user turns (one row per
  query: a two-query trace is two rows, not one per assistant turn), pre-tokenized into `hf/`
  with loss on the row's target turns only (those after its user query), as the dataset
  service writes it;
- trelis: TRL defaults with batch 1, one row per assistant turn (the conversation up to that
  turn), loss on every assistant turn of the row, so early turns are trained again and again.
"trained tok/s" counts every token through the model, "supervised tok/s" the tokens with a
label; "unique sup tok/s" divides the distinct supervised tokens of the traces (what one pass
over the data has to teach) by the run's time: the number to compare.
The unrolling here is a local stand-in for the dataset service's (same rule, plain dicts).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tracewheel.core.dataset_layout import HF_DIR, Manifest, jsonl_file, write_manifest

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} in the browser",
            "parameters": {"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]},
        },
    }
    for name in ("browser_navigate", "browser_click", "browser_snapshot")
]


def generated_trace(n: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful browser agent."}]
    for query in range(2):
        messages.append({"role": "user", "content": f"Task {n}.{query}: find the price of item TW-{n:04d}."})
        for step in range(2):
            call_id = f"call-{n}-{query}-{step}"
            name = ("browser_navigate", "browser_click")[step]
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": f"I should use {name} to reach the item page, step {step} of query {query}.",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps({"target": f"/item/TW-{n:04d}"})},
                        }
                    ],
                }
            )
            snapshot = "".join(f'- link "Related item {i}" [ref=e{i}]\n' for i in range(12))
            messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": snapshot})
        messages.append({"role": "assistant", "content": f"Item TW-{n:04d} costs {n * 3 + query} EUR."})
    return messages


def unroll_at_user_turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One row per user query: everything up to the last assistant turn answering it."""
    user_turns = [i for i, m in enumerate(messages) if m["role"] == "user"]
    ends = [*user_turns[1:], len(messages)]
    return [messages[:end] for end in ends]


def unroll_per_assistant_turn(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [messages[: i + 1] for i, m in enumerate(messages) if m["role"] == "assistant"]


def write_dataset(folder: Path, rows: list[list[dict[str, Any]]], max_length: int | None = None) -> Path:
    folder.mkdir(parents=True)
    write_manifest(folder, Manifest(version=folder.name, base_model="bench", max_length=max_length))
    tools = json.dumps(TOOLS)
    (folder / jsonl_file("train")).write_text("".join(json.dumps({"messages": r, "tools": tools}) + "\n" for r in rows))
    return folder


def target_only_labels(ids: list[int], mask: list[int], targets: int) -> list[int]:
    """Labels on the last `targets` masked runs (one run per assistant turn), -100 elsewhere."""
    runs: list[list[int]] = []
    for index, bit in enumerate(mask):
        if bit and (not runs or runs[-1][-1] != index - 1):
            runs.append([])
        if bit:
            runs[-1].append(index)
    keep = {index for run in runs[len(runs) - targets :] for index in run}
    return [token if index in keep else -100 for index, token in enumerate(ids)]


def write_pretokenized(folder: Path, rows: list[list[dict[str, Any]]], model: Path) -> Path:
    """What the dataset service writes to hf/: input_ids and target-only labels."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from tracewheel.core.chat import TRAINING_TEMPLATE, load_template

    tokenizer = AutoTokenizer.from_pretrained(model)
    columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    for row in rows:
        last_user = max(i for i, m in enumerate(row) if m["role"] == "user")
        targets = sum(1 for m in row[last_user:] if m["role"] == "assistant")
        encoded = tokenizer.apply_chat_template(
            row,
            tools=TOOLS,
            chat_template=load_template(TRAINING_TEMPLATE),
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        columns["input_ids"].append(list(encoded["input_ids"]))
        columns["labels"].append(target_only_labels(list(encoded["input_ids"]), encoded["assistant_masks"], targets))
    DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(str(folder / HF_DIR))
    return folder


def worker(dataset: Path, model: Path, recipe_name: str) -> dict[str, float]:
    import torch

    from tracewheel.trainer.data import load_training_data
    from tracewheel.trainer.recipe import Recipe
    from tracewheel.trainer.train import build_trainer

    defaults = Recipe.model_construct()  # the declared defaults, whatever TW_RECIPE_* says
    overrides: dict[str, Any] = {"num_train_epochs": 1, "max_steps": -1, "eval": False, "save_steps": 10**6}
    if recipe_name == "trelis":  # TRL's SFTConfig defaults, batch 1
        overrides |= {
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 1,
            "learning_rate": 2e-5,
        }
    recipe: Recipe = defaults.model_copy(update=overrides).for_device(torch.cuda.is_available())
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(load_training_data(dataset), model, Path(out), recipe, [])
        rows = trainer.train_dataset
        tokens = sum(len(ids) for ids in rows["input_ids"])
        supervised = sum(sum(1 for label in labels if label != -100) for labels in rows["labels"])
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": len(rows), "tokens": tokens, "supervised": supervised, "seconds": seconds, "peak_rss_mb": peak_mb}


def resolve(model: str | None, cache: Path) -> Path:
    from tracewheel.core.chat import TRAINING_TEMPLATE, load_template

    if model is None:
        from tracewheel.inference.testing import build_tiny_model

        return build_tiny_model(cache / "tiny-qwen3-train", cache, chat_template=load_template(TRAINING_TEMPLATE))
    from tracewheel.inference.model_store import resolve_model

    return resolve_model(model, cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=24)
    parser.add_argument("--model", default=None, help="model folder or SmolLM2-135M-Instruct (default: tiny)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "tracewheel-tests")
    parser.add_argument("--worker", nargs=3, metavar=("DATASET", "MODEL", "RECIPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]), args.worker[2])))
        return
    model = resolve(args.model, args.cache)
    traces = [generated_trace(n) for n in range(args.traces)]
    with tempfile.TemporaryDirectory() as tmp:
        ours_rows = [r for t in traces for r in unroll_at_user_turns(t)]
        ours = write_pretokenized(write_dataset(Path(tmp) / "tracewheel", ours_rows), ours_rows, model)
        # TRL's SFTConfig default length, 1024 (the trainer trains up to the dataset's max_length)
        trelis = write_dataset(
            Path(tmp) / "trelis", [r for t in traces for r in unroll_per_assistant_turn(t)], max_length=1024
        )
        results = {}
        for name, dataset in (("tracewheel", ours), ("trelis", trelis)):
            command = [sys.executable, __file__, "--worker", str(dataset), str(model), name]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"model {model.name}, {args.traces} traces (2 queries x 3 assistant turns), 1 epoch, CPU fp32")
    print(
        f"{'recipe':<11}{'rows':>6}{'tokens':>9}{'sup tok':>9}{'s':>8}{'trained tok/s':>15}"
        f"{'sup tok/s':>11}{'unique sup tok/s':>18}{'peak RSS MB':>13}"
    )
    unique = results["tracewheel"]["supervised"]  # target-only rows never train a turn twice
    rates = {}
    for name, r in results.items():
        rates[name] = (
            r["tokens"] / r["seconds"],
            r["supervised"] / r["seconds"],
            unique / r["seconds"],
            r["peak_rss_mb"],
        )
        print(
            f"{name:<11}{r['rows']:>6}{r['tokens']:>9}{r['supervised']:>9}{r['seconds']:>8.1f}"
            f"{rates[name][0]:>15.0f}{rates[name][1]:>11.0f}{rates[name][2]:>18.0f}{rates[name][3]:>13.0f}"
        )
    ratio = [a / b for a, b in zip(rates["tracewheel"], rates["trelis"], strict=True)]
    print(
        f"{'ratio':<11}{'':>6}{'':>9}{'':>9}{'':>8}{ratio[0]:>14.2f}x{ratio[1]:>10.2f}x{ratio[2]:>17.2f}x"
        f"{ratio[3]:>12.2f}x"
    )


if __name__ == "__main__":
    main()
