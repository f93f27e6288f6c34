"""Where an adapter goes wrong on the held-out suite, without running the agent.

    .venv/bin/python bench/heldout_probe.py ADAPTER_DIR [ADAPTER_DIR ...] [--tasks 10] [--base] [--misses]
        [--dataset DATASET_DIR] [--snapshots compact:incremental]

Replays the held-out suite's reference solutions (the demo's: seed 0, the demo's snapshot style
and mode unless `--snapshots` says otherwise, the demo's tool offer) through the real gateway
browser, renders each as a dataset build renders a row (training template, no reasoning), and
feeds it to each adapter teacher-forced: the model sees the reference path up to each of its
turns. Per task it prints, for every assistant turn, the probability of the turn's decision
token (the `<` of `<tool_call>`, or the answer's first word; trainer/loss.py `decision_mask`),
starred when greedy decoding would write the whole turn exactly; then the answer the adapter
writes greedily after the full reference path. With `--misses`, each turn greedy decoding would
not write exactly gets a line of its own: the reference up to the first token the model gets
wrong, that token's probability, and what the model would write there instead (e.g.
`browser_type` on `searchbox` where the order form's `spinbutton` was due).

With `--dataset`, the rows probed are a built dataset's training rows instead, exactly as the
trainer saw them (token ids and labels): whether an adapter fits the rows it was trained on.
A held-out miss on a turn the adapter also gets wrong on its own rows is underfitting, not a
wording that fails to carry over.

What it separates: a task lost because the model left the path (a low decision or a wrong
argument on the way) from one lost at the answer (the right pages seen, the wrong value said).
The agent's own evaluation mixes both, and adds the nondeterminism of concurrent runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from demo_tokens import replay_all, serve_site

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.tool_schemas import REFERENCE_TOOL_ARGUMENTS
from tracewheel.cli.demo_profiles import DEMO_TOOLS, full_profile
from tracewheel.core.chat import SERVING_TEMPLATE, TRAINING_TEMPLATE, load_template
from tracewheel.dataset.render import render_row
from tracewheel.dataset.unroll import TrainingRow, unroll_at_user_turns, without_reasoning
from tracewheel.gateway.config import GatewaySettings
from tracewheel.inference.model_store import resolve_model
from tracewheel.trainer.loss import IGNORE, decision_mask, labelled_spans


def held_out_references(tasks: int, task_reminder: bool, snapshots: str) -> list[tuple[str, TrainingRow]]:
    """(task id, row) of the held-out suite's first `tasks` reference solutions (the demo's
    settings; `snapshots` as `style:mode`), replayed in chromium: one row each as a build
    unrolls it, without reasoning."""
    config = LoopOptions(
        tools=DEMO_TOOLS,
        tool_arguments=REFERENCE_TOOL_ARGUMENTS,
        argument_descriptions=False,
        task_reminder=task_reminder,
    )
    with tempfile.TemporaryDirectory() as scratch:
        traces = asyncio.run(replay_all(serve_site(), snapshots, config, tasks, Path(scratch), suite="heldout"))
    references = []
    for trace in traces:
        (row,) = unroll_at_user_turns(trace)
        references.append((trace.task.task_id, without_reasoning(row)))
    return references


def held_out_rows(
    tokenizer: Any, tasks: int, task_reminder: bool, snapshots: str
) -> list[tuple[str, list[int], list[int]]]:
    """(task id, input ids, labels) of each held-out reference, rendered like a training row."""
    template = load_template(TRAINING_TEMPLATE)
    rows = []
    for task_id, row in held_out_references(tasks, task_reminder, snapshots):
        rendered = render_row(tokenizer, template, row)
        labels = [t if m else IGNORE for t, m in zip(rendered.input_ids, rendered.assistant_masks, strict=True)]
        rows.append((task_id, rendered.input_ids, labels))
    return rows


def dataset_rows(dataset: Path) -> list[tuple[str, list[int], list[int]]]:
    """(row id, input ids, labels) of a built dataset's training rows, as the trainer loads them."""
    from demo_experiment import template_of

    from tracewheel.trainer.train import load_training_data

    data = load_training_data(dataset)  # no length cut: every row, in train.jsonl's order
    requests = [json.loads(line)["messages"][0]["content"] for line in (dataset / "train.jsonl").open()]
    return [
        (f"train-row-{index:03d}-{template_of(request)}", row["input_ids"], row["labels"])
        for index, (row, request) in enumerate(zip(data.train, requests, strict=True))
    ]


def probe(model: Any, tokenizer: Any, rows: list[tuple[str, list[int], list[int]]], misses: bool = False) -> None:
    think_close = tokenizer.encode("</think>", add_special_tokens=False)

    def blank(token: int) -> bool:
        return not tokenizer.decode([token]).strip()

    exact_turns = total_turns = 0
    for task_id, input_ids, labels in rows:
        ids = torch.tensor([input_ids])
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, :-1].float()
        targets = torch.tensor([labels[1:]])
        decisions = decision_mask(targets, think_close, blank)[0]
        greedy = logits.argmax(-1)
        cells = []
        turns = labelled_spans(labels[1:])
        for start, end in turns:
            where = decisions[start:end].nonzero()
            decision = start + int(where[0]) if len(where) else start
            exact = bool((greedy[start:end] == targets[0, start:end]).all())
            exact_turns += exact
            p = float(logits[decision].softmax(-1)[targets[0, decision]])  # one row, not the whole sequence
            cells.append(f"{p:.2f}{'*' if exact else ' '}")
        total_turns += len(turns)
        answer_start = turns[-1][0] + 1  # labels were shifted by one
        with torch.inference_mode():
            out = model.generate(torch.tensor([input_ids[:answer_start]]), max_new_tokens=40, do_sample=False)
        said = tokenizer.decode(out[0, answer_start:], skip_special_tokens=True).split("</think>")[-1].strip()
        print(f"{task_id:32} {' '.join(cells):48} -> {said[:90]!r}", flush=True)
        if misses:
            print_misses(tokenizer, logits, targets[0], greedy, turns)
    print(f"turns greedy decoding writes exactly: {exact_turns}/{total_turns}")


def print_misses(tokenizer: Any, logits: Any, targets: Any, greedy: Any, turns: list[tuple[int, int]]) -> None:
    """Per turn greedy decoding would not write exactly: where it first goes wrong, and how."""
    for number, (start, end) in enumerate(turns, 1):
        wrong = (greedy[start:end] != targets[start:end]).nonzero()
        if not len(wrong):
            continue
        at = start + int(wrong[0])
        p = logits[at].softmax(-1)
        due, said = int(targets[at]), int(greedy[at])
        before = tokenizer.decode(targets[start:at]).replace("\n", " ")[-60:]
        print(
            f"    turn {number}: ...{before!r} wants {tokenizer.decode([due])!r} ({float(p[due]):.2f}),"
            f" writes {tokenizer.decode([said])!r} ({float(p[said]):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapters", nargs="*", type=Path)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--base", action="store_true", help="probe the base model too")
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument(
        "--no-task-reminder",
        dest="task_reminder",
        action="store_false",
        help="tool results without the request after them (adapters trained before the demo reminded)",
    )
    profile = full_profile().env
    # the profile leaves the mode at the gateway's default
    mode = profile.get("TW_GATEWAY_SNAPSHOT_MODE", GatewaySettings.model_fields["snapshot_mode"].default)
    parser.add_argument(
        "--snapshots",
        default=f"{profile['TW_GATEWAY_SNAPSHOT_STYLE']}:{mode}",
        help="the gateway's snapshot style and mode of the held-out paths (default: the demo's, %(default)s); "
        "`compact:incremental` for adapters trained on incremental snapshots",
    )
    parser.add_argument("--misses", action="store_true", help="print where each wrong turn first goes wrong")
    parser.add_argument("--dataset", type=Path, default=None, help="probe this dataset's training rows instead")
    args = parser.parse_args()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if args.dataset:
        rows = dataset_rows(args.dataset)
    else:
        rows = held_out_rows(tokenizer, args.tasks, args.task_reminder, args.snapshots)
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    print("per turn: P(decision token), * = greedy writes the turn exactly; -> the answer after the reference path")
    if args.base:
        print("== base model")
        probe(base, tokenizer, rows, args.misses)
    for adapter in args.adapters:
        model = PeftModel.from_pretrained(base, str(adapter)).eval()
        print(f"== {adapter}")
        probe(model, tokenizer, rows, args.misses)
        base = model.unload()


if __name__ == "__main__":
    main()
