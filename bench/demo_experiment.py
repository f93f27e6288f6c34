"""One round-1 experiment of the demo, without the rest of the demo: train a built dataset with
the full profile's recipe (plus overrides), then evaluate the adapter on the held-out suite in a
fresh stack with the full profile's settings.

    .venv/bin/python bench/demo_experiment.py DATASET_DIR OUT_DIR [--rows price_lookup=1,order_form=3,...]
        [--set TW_RECIPE_LORA_R=8 ...] [--adapter ADAPTER_DIR] [--init-adapter ADAPTER_DIR] [--base-model DIR]
        [--seeds 42,1,2,3]

- `--rows`: train on a subset: the first N rows of each named template, in the dataset's
  order (rows are matched to templates by their request's wording; templates not named are
  left out). Written to OUT_DIR/dataset.
- `--set`: recipe (TW_RECIPE_*) or stack (TW_AGENT_*, ...) settings over the full profile's.
- `--adapter`: skip training and evaluate this adapter.
- `--init-adapter`: a warm start from this adapter (a round 2 as the trainer runs it when an
  adapter is deployed; `TW_RECIPE_WARM_START_EPOCHS` sets its epochs, docs/trainer.md).
- `--seeds`: the same experiment once per training seed (`TW_RECIPE_SEED`: LoRA initialisation
  and row order), each in OUT_DIR/seed-N, then a table of the runs and their spread. On twenty
  held-out tasks one run of the demo's recipe scored 30-45 % by seed alone, so recipes a task or
  two apart are not ranked by one run each.

Prints the training and evaluation wall times, held-out success per template and every task's
verdict; the evaluation's traces are kept in OUT_DIR/home/agent/eval-traces/.
On this 2-core machine a round takes 15-20 min; do not run anything else beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tracewheel.agent.tasks.templates import TEMPLATES
from tracewheel.cli.demo_profiles import full_profile
from tracewheel.cli.flywheel import Flywheel
from tracewheel.cli.stack import Supervisor
from tracewheel.core.dataset_layout import HF_DIR, MANIFEST_FILE, jsonl_file, read_manifest
from tracewheel.v1 import inference_pb2

_FIELD = re.compile(r"\\\{\w+\\\}")


def template_of(request: str) -> str:
    """The template whose wording (any phrasing, train or held-out) the request matches."""
    for name, template in TEMPLATES.items():
        for phrasing in (*template.train_phrasings, *template.heldout_phrasings):
            if re.match(_FIELD.sub(".+?", re.escape(phrasing)) + " The shop is at ", request):
                return name
    raise SystemExit(f"no template matches the request {request[:80]!r}")


def subset(dataset: Path, out: Path, counts: dict[str, int]) -> Path:
    """A copy of `dataset` keeping the first `counts[template]` rows of each template."""
    from datasets import DatasetDict, load_from_disk

    unknown = set(counts) - set(TEMPLATES)
    if unknown:
        raise SystemExit(f"unknown templates {sorted(unknown)}; known: {', '.join(TEMPLATES)}")
    splits = load_from_disk(str(dataset / HF_DIR))
    lines = (dataset / jsonl_file("train")).read_text().splitlines()
    kept: list[int] = []
    taken = dict.fromkeys(counts, 0)
    for index, line in enumerate(lines):
        name = template_of(json.loads(line)["messages"][0]["content"])
        if taken.get(name, 0) < counts.get(name, 0):
            kept.append(index)
            taken[name] += 1
    short = {name: f"{taken[name]} of {want}" for name, want in counts.items() if taken[name] < want}
    if short:
        raise SystemExit(f"the dataset has fewer rows than asked: {short}")
    target = out / "dataset"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    parts = {"train": splits["train"].select(kept), "eval": splits["eval"]}
    DatasetDict(parts).save_to_disk(str(target / HF_DIR), num_shards={"train": 1, "eval": 1})
    (target / jsonl_file("train")).write_text("".join(lines[i] + "\n" for i in kept))
    shutil.copy(dataset / MANIFEST_FILE, target / MANIFEST_FILE)
    print(f"subset: rows {kept} of {len(lines)} ({', '.join(f'{k} {v}' for k, v in taken.items())})")
    return target


def train(dataset: Path, base: Path, out: Path, env: dict[str, str], init_adapter: Path | None = None) -> Path:
    recipe = {k: v for k, v in env.items() if k.startswith("TW_RECIPE_")}
    command = [sys.executable, "-m", "tracewheel.trainer.train_cli", str(dataset), str(base), str(out / "train")]
    command += ["--init-adapter", str(init_adapter)] if init_adapter else []
    started = time.monotonic()
    run = subprocess.run(command, env=os.environ | recipe, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"training failed ({run.returncode}): {run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])["result"]
    print(f"training: {time.monotonic() - started:.0f} s, {json.dumps(result, default=str)[:300]}")
    return out / "train" / "adapter"


def evaluate(adapter: Path, base: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    home = out / "home"
    shutil.rmtree(home, ignore_errors=True)
    (home / "logs").mkdir(parents=True)
    env = env | {"TW_INFERENCE_MODEL": str(base.resolve())}
    stack = Supervisor(home, env=env, sink=(home / "logs" / "stack.log").open("a"), health_timeout_s=300)
    flywheel = Flywheel(stack.start())
    try:
        # a name of its own: the folder's ("train") would clash with a torch module attribute in peft
        name = f"experiment-{out.name}"
        request = inference_pb2.LoadAdapterRequest(lora_name=name, lora_path=str(adapter))
        flywheel.inference.LoadAdapter(request, timeout=300)
        started = time.monotonic()
        metrics = flywheel.evaluate(name, "heldout", 3600)
        print(f"held-out evaluation: {time.monotonic() - started:.0f} s")
    finally:
        flywheel.close()
        stack.stop()
    print(
        f"success {metrics['success_rate']:.0%}, valid tool calls {metrics['valid_tool_call_rate']:.0%}, "
        f"mean steps {metrics['mean_steps']:.1f}; by template: {json.dumps(metrics.get('success_by_template', {}))}"
    )
    traces = [json.loads(path.read_text()) for path in (home / "agent" / "eval-traces").glob("*/heldout/*.json")]
    for trace in sorted(traces, key=lambda t: t["task"]["task_id"]):  # the evaluation's traces (docs/agent.md)
        outcome, steps = trace["outcome"], trace["metadata"]["extra"].get("steps", "?")
        print(f"  {trace['task']['task_id']:32} {outcome['verdict']:6} steps={steps} {outcome['detail'][:90]}")
    return metrics


def spread(runs: dict[int, dict[str, Any]]) -> None:
    """One line per seed (held-out success, per template) and the runs' mean and range."""
    names = sorted({name for metrics in runs.values() for name in metrics.get("success_by_template", {})})
    print(f"{'seed':>6} {'success':>8}  " + "  ".join(f"{name:>16}" for name in names))
    for seed, metrics in runs.items():
        by_template = metrics.get("success_by_template", {})
        cells = "  ".join(f"{by_template.get(name, 0.0):>16.0%}" for name in names)
        print(f"{seed:>6} {metrics['success_rate']:>8.0%}  {cells}")
    rates = [metrics["success_rate"] for metrics in runs.values()]
    print(f"mean {statistics.mean(rates):.1%}, range {min(rates):.0%}-{max(rates):.0%} over {len(rates)} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", default="", help="template=count,...: train on a subset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--init-adapter", type=Path, default=None, help="train from this adapter (a warm start)")
    parser.add_argument("--base-model", type=Path, default=None, help="default: the dataset manifest's base_model")
    parser.add_argument("--seeds", default="", help="comma-separated training seeds: one run each, then their spread")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    if seeds and args.adapter is not None:
        raise SystemExit("--seeds trains once per seed; it cannot be used with --adapter")
    env = full_profile().env | dict(item.split("=", 1) for item in args.set)
    base = args.base_model or Path(read_manifest(args.dataset).base_model)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.adapter is not None:
        evaluate(args.adapter, base, args.out, env)
        return
    counts = {k: int(v) for k, v in (item.split("=") for item in args.rows.split(",") if item)}
    dataset = subset(args.dataset, args.out, counts) if counts else args.dataset
    if not seeds:
        evaluate(train(dataset, base, args.out, env, args.init_adapter), base, args.out, env)
        return
    runs: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        print(f"== seed {seed}")
        out, seeded = args.out / f"seed-{seed}", env | {"TW_RECIPE_SEED": str(seed)}
        out.mkdir(exist_ok=True)
        runs[seed] = evaluate(train(dataset, base, out, seeded, args.init_adapter), base, out, seeded)
    spread(runs)


if __name__ == "__main__":
    main()
