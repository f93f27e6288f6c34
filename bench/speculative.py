"""Speculative decoding by prompt lookup in the CPU engine, on the demo's own requests.

    .venv/bin/python bench/speculative.py [--adapter ADAPTER_DIR] [--tasks 5] [--drafts 0,3,5]

Replays the held-out suite's reference solutions (seed 0, compact snapshots, the demo's tool
offer, the request after every result) through the real gateway browser, and turns every
assistant turn into the chat request the agent would send at that point (thinking off, the
demo's 160 max tokens, greedy). Then, for each number of draft tokens (0: speculation off),
one engine serves them as the demo's evaluation does: four agents at once, each sending its
task's turns in order, so the prefix cache and the batch behave as in a run. The model is the
base model, or `--adapter` (a demo round's adapter writes tool calls, which is where the
drafts are accepted; the base model mostly answers in prose).

Prints per setting: wall time, completion tokens/s, drafts proposed and accepted, and how many
outputs differ from the setting without speculation (greedy output should not change; a
difference means logits computed over several positions at once rounded differently).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

import torch
from heldout_probe import held_out_references

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.dataset.render import chat_messages, chat_tools
from tracewheel.inference.chat import ChatCompletionRequest, build_prompt
from tracewheel.inference.engine import Engine, SamplingParams
from tracewheel.inference.engine.prefix_cache import PrefixCache
from tracewheel.inference.model_store import resolve_model

ADAPTER = "bench"


def task_requests(tokenizer: Any, tasks: int) -> list[list[list[int]]]:
    """Per held-out task, the prompt of each assistant turn of its reference solution."""
    prompts = []
    for _task_id, row in held_out_references(tasks, task_reminder=True):
        messages, tools = chat_messages(row), chat_tools(row)
        turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        prompts.append(
            [
                build_prompt(
                    tokenizer,
                    ChatCompletionRequest(
                        model="bench",
                        messages=messages[:i],
                        tools=tools,
                        chat_template_kwargs={"enable_thinking": False},
                    ),
                    context_length=8192,
                )[0]
                for i in turns
            ]
        )
    return prompts


def serve(
    engine: Engine, tasks: list[list[list[int]]], adapter: str | None, agents: int
) -> tuple[float, list[str], int]:
    """Runs the tasks with `agents` of them at a time, each task's turns one after another.
    Returns the wall time, every output (in task and turn order) and the completion tokens."""
    params = SamplingParams(max_tokens=160, temperature=0.0)
    outputs: list[list[str]] = [[] for _ in tasks]
    tokens = [0]
    queue = list(range(len(tasks)))
    lock = threading.Lock()

    def agent() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop(0)
            for prompt in tasks[index]:
                text, result = engine.generate_blocking(prompt, params, adapter)
                outputs[index].append(text)
                with lock:
                    tokens[0] += result.completion_tokens

    started = time.perf_counter()
    threads = [threading.Thread(target=agent) for _ in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, [text for task in outputs for text in task], tokens[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, help="a LoRA adapter folder (default: the base model)")
    parser.add_argument("--tasks", type=int, default=5, help="held-out tasks (5: one per template)")
    parser.add_argument("--drafts", default="0,3,5", help="draft tokens per step to compare (0: off)")
    parser.add_argument("--agents", type=int, default=4)
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
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    adapter = None
    if args.adapter:
        model = PeftModel.from_pretrained(model, str(args.adapter), adapter_name=ADAPTER).eval()
        adapter = ADAPTER
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None}
    print(f"{sum(map(len, tasks))} requests from {len(tasks)} held-out tasks, {args.agents} agents at once")
    print("| drafts | wall s | completion tokens/s | drafted | accepted | outputs that differ | speed-up |")
    print("|---|---|---|---|---|---|---|")
    baseline: tuple[float, list[str]] | None = None
    for drafts in (int(d) for d in args.drafts.split(",")):
        engine = Engine(
            model, tokenizer, max_batch=8, prefix_cache=PrefixCache(), stop_token_ids=stop, speculative_tokens=drafts
        ).start()
        try:
            wall, outputs, tokens = serve(engine, tasks, adapter, args.agents)
        finally:
            engine.stop()
        baseline = baseline or (wall, outputs)
        differ = sum(a != b for a, b in zip(outputs, baseline[1], strict=True))
        print(
            f"| {drafts} | {wall:.1f} | {tokens / wall:.1f} | {engine.drafted} | {engine.accepted} | {differ} |"
            f" {baseline[0] / wall:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
