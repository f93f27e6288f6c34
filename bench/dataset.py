"""Dataset service throughput: ingest and build (traces/s), against the naive Trelis build.

Run: `.venv/bin/python bench/dataset.py [--traces 200]`. Generated two-query agent traces
(two tool calls per query, with reasoning), the tiny test model's SmolLM2 tokenizer, the
training template. "naive" is `unroll_per_assistant_turn` + `apply_chat_template` row by row
(loss on every assistant turn of every row), no store, no files: the work a workshop script does.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from tracewheel.core.chat import TRAINING_TEMPLATE, load_template
from tracewheel.core.dataset_layout import read_manifest
from tracewheel.dataset.build import BuildConfig, DatasetBuilder
from tracewheel.dataset.render import chat_messages, chat_tools, masked_runs
from tracewheel.dataset.store import TraceStore
from tracewheel.dataset.unroll import unroll_per_assistant_turn
from tracewheel.inference.testing import smollm2_tokenizer_dir

CACHE = Path.home() / ".cache" / "tracewheel-tests"


def _exchange(n: int, query: str, answer: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": query}]
    for step in range(2):
        call = f"call-{n}-{len(query)}-{step}"
        args = json.dumps({"url": f"http://127.0.0.1:8400/p/{n}/{step}"})
        messages += [
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": f"Step {step}: I should look at page {step} of item {n} before answering.",
                "tool_calls": [{"id": call, "function": {"name": "browser_navigate", "arguments": args}}],
            },
            {
                "role": "tool",
                "tool_call_id": call,
                "name": "browser_navigate",
                "content": f"- heading 'Item {n}' " * 20,
            },
        ]
    messages.append({"role": "assistant", "content": answer, "reasoning_content": "The page says so."})
    return messages


def generated_trace(n: int) -> dict[str, Any]:
    return {
        "id": f"bench-{n:05d}",
        "created_at": "2026-11-01T10:00:00Z",
        "tools": [{"type": "function", "function": {"name": "browser_navigate", "description": "Go to a URL"}}],
        "messages": [
            {"role": "system", "content": "You are a careful browsing agent."},
            *_exchange(n, f"What is item {n}?", f"Item {n} is a kettle."),
            *_exchange(n, f"And its price, item {n}?", f"It costs ${n}.99."),
        ],
        "task": {"suite": "bench", "task_id": f"task-{n}"},
        "outcome": {"verdict": "passed", "score": 1.0, "final_answer": f"It costs ${n}.99."},
    }


def naive_build(store: TraceStore, tokenizer: Any, template: str) -> tuple[int, int, int]:
    """Tokens, supervised tokens, and supervised tokens counting each turn once (its own row's last run)."""
    total = supervised = distinct = 0
    for trace_id in store.approved_revisions():
        for row in unroll_per_assistant_turn(store.get(trace_id).trace):
            encoded = tokenizer.apply_chat_template(
                chat_messages(row),
                tools=chat_tools(row),
                chat_template=template,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
            )
            total += len(encoded["input_ids"])
            supervised += sum(encoded["assistant_masks"])
            start, end = masked_runs(encoded["assistant_masks"])[-1]
            distinct += end - start
    return total, supervised, distinct


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=200)
    count = parser.parse_args().traces
    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(CACHE))
    template = load_template(TRAINING_TEMPLATE)
    traces = [generated_trace(n) for n in range(count)]
    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "traces.sqlite") as store:
        start = time.perf_counter()
        for trace in traces:
            store.ingest(trace)
        ingest_s = time.perf_counter() - start
        config = BuildConfig(base_model="tiny-qwen3", chat_template=template, eval_ratio=0.1)
        start = time.perf_counter()
        result = DatasetBuilder(store, tokenizer, config, Path(tmp) / "datasets").build()
        build_s = time.perf_counter() - start
        manifest = read_manifest(Path(result.record.path))
        start = time.perf_counter()
        naive_total, naive_supervised, naive_distinct = naive_build(store, tokenizer, template)
        naive_s = time.perf_counter() - start
    total, supervised = manifest.tokens.total, manifest.tokens.supervised
    print(f"{count} generated traces (2 queries, 6 assistant turns each)")
    header = f"{'step':<38}{'seconds':>8}{'traces/s':>10}{'tokens':>9}{'superv.':>9}{'distinct':>9}"
    print(header + f"{'tok/sup':>8}{'tok/dist':>9}")
    print(f"{'ingest (store + curation)':<38}{ingest_s:>8.2f}{count / ingest_s:>10.1f}")
    rows = [
        ("build (unroll at user turns + files)", build_s, total, supervised, supervised),
        ("naive (per assistant turn, no files)", naive_s, naive_total, naive_supervised, naive_distinct),
    ]
    for name, seconds, tokens, sup, distinct in rows:
        line = f"{name:<38}{seconds:>8.2f}{count / seconds:>10.1f}{tokens:>9}{sup:>9}{distinct:>9}"
        print(line + f"{tokens / sup:>8.2f}{tokens / distinct:>9.2f}")
    print(f"naive / build: time x{naive_s / build_s:.2f}, tokens x{naive_total / total:.2f},")
    print(f"  tokens per supervised token x{(naive_total / naive_supervised) / (total / supervised):.2f},")
    print(f"  tokens per distinct supervised token x{(naive_total / naive_distinct) / (total / supervised):.2f}")
    print("distinct: each assistant turn counted once (naive trains earlier turns again in later rows)")


if __name__ == "__main__":
    main()
