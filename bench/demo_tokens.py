"""Tokens of the demo's training rows: what compact snapshots, a smaller tool offer, rows without
reasoning, the request after every result, incremental snapshots and the observation window each change, side by side
on the same demonstrations.

    .venv/bin/python bench/demo_tokens.py [--tasks 10] [--model SmolLM2-135M-Instruct|PATH]

Replays the train suite's reference solutions (the demo's: seed 0, `--tasks` tasks) through the
real gateway browser (chromium, in process) against the task site, once per snapshot style, and
renders every trace as a dataset build does (`unroll`, `without_reasoning`, `render_row` with
the training template and the model's tokenizer, `pack_prefix_tree` for windowed traces). On 2 CPU cores training
time is linear in these tokens (and attention quadratic in a row's length), so this is where
the demo's minutes go.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.replay import replay_task
from tracewheel.agent.tasks import load_suite
from tracewheel.agent.tasksite import create_app
from tracewheel.agent.tool_schemas import REFERENCE_TOOL_ARGUMENTS
from tracewheel.agent.tools import LocalGateway
from tracewheel.cli.demo_profiles import DEMO_TOOLS
from tracewheel.core.chat import SERVING_TEMPLATE, TRAINING_TEMPLATE, load_template
from tracewheel.core.natsserver import free_port
from tracewheel.core.observations import OBSERVATION_WINDOW_KEY
from tracewheel.dataset.pack import pack_prefix_tree
from tracewheel.dataset.render import render_row
from tracewheel.dataset.unroll import unroll, without_reasoning
from tracewheel.gateway.browser_options import BrowserConfig
from tracewheel.gateway.session import SessionManager
from tracewheel.inference.model_store import resolve_model


def serve_site() -> str:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the task site did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


async def replay_all(
    site: str, style: str, config: LoopOptions, tasks: int, scratch: Path, suite: str = "train"
) -> list[Any]:
    """The reference solutions of `suite`'s first `tasks` tasks (seed 0), replayed in chromium.

    `style` is a snapshot style, or `style:mode` with a snapshot mode (`compact:incremental`)."""
    style, _, mode = style.partition(":")
    browser = BrowserConfig(
        chromium_path=shutil.which("chromium"),
        reap_interval_s=0,
        attachments_dir=scratch / style / mode,
        allow_hosts=(site.removeprefix("http://"),),
        snapshot_style=style,  # type: ignore[arg-type]
        snapshot_mode=mode or "full",  # type: ignore[arg-type]
    )
    traces = []
    async with SessionManager(browser) as manager:
        gateway = LocalGateway(manager)
        for task in load_suite(suite, 0, size=tasks, base_url=site):
            tools = await gateway.open(DEMO_TOOLS, config.result_char_limit)
            try:
                traces.append(await replay_task(task, tools, config=config))
            finally:
                await tools.close()
    return traces


def row_tokens(tokenizer: Any, template: str, trace: Any, reasoning: bool, window: int = 0, packed: bool = True) -> int:
    """Tokens of the trace's training rows as a dataset build renders them: one row per query, or
    with an observation window one row per turn as served, packed into a prefix tree (or not)."""
    if window:
        extra = {**trace.metadata.extra, OBSERVATION_WINDOW_KEY: str(window)}
        trace = trace.model_copy(update={"metadata": trace.metadata.model_copy(update={"extra": extra})})
    rows = unroll(trace)
    rows = rows if reasoning else [without_reasoning(row) for row in rows]
    rendered = [render_row(tokenizer, template, row) for row in rows]
    if window and packed:
        return len(pack_prefix_tree(rendered).input_ids)
    return sum(len(row.input_ids) for row in rendered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = load_template(TRAINING_TEMPLATE)
    site = serve_site()
    full_offer = LoopOptions(tools=DEMO_TOOLS)
    demo_offer = LoopOptions(tools=DEMO_TOOLS, tool_arguments=REFERENCE_TOOL_ARGUMENTS, argument_descriptions=False)
    reminder = LoopOptions(
        tools=DEMO_TOOLS, tool_arguments=REFERENCE_TOOL_ARGUMENTS, argument_descriptions=False, task_reminder=True
    )
    # (name, snapshot style, agent config, reasoning, observation window, packed)
    variants = [
        ("@playwright/mcp snapshots, full tool schemas", "full", full_offer, True, 0, True),
        ("compact snapshots, full tool schemas", "compact", full_offer, True, 0, True),
        ("compact snapshots, demo tool offer", "compact", demo_offer, True, 0, True),
        ("compact, demo offer, no reasoning", "compact", demo_offer, False, 0, True),
        ("+ the request after every result (the demo)", "compact", reminder, False, 0, True),
        ("+ incremental snapshots", "compact:incremental", reminder, False, 0, True),
        ("+ observation window 1, rows per turn", "compact", reminder, False, 1, False),
        ("+ observation window 1, packed", "compact", reminder, False, 1, True),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        cache: dict[tuple[str, int], list[Any]] = {}
        print(f"{args.tasks} demonstrations of the train suite, {Path(tokenizer.name_or_path).name} tokens")
        print(f"{'rows':48} {'tokens':>8} {'ratio':>6} {'mean':>6} {'max':>6}")
        first = None
        for name, style, config, reasoning, window, packed in variants:
            key = (style, id(config))
            if key not in cache:
                cache[key] = asyncio.run(replay_all(site, style, config, args.tasks, Path(scratch)))
            counts = [row_tokens(tokenizer, template, trace, reasoning, window, packed) for trace in cache[key]]
            total = sum(counts)
            first = first or total
            print(f"{name:48} {total:8d} {total / first:6.2f} {total / len(counts):6.0f} {max(counts):6d}")


if __name__ == "__main__":
    main()
