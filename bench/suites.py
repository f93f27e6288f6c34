"""Suite files at size: load and validate a generated suite, and the declarative checkers' time per task.

    .venv/bin/python bench/suites.py [--tasks 1000] [--repeats 5]

Writes a YAML suite of `--tasks` tasks (every declarative kind in turn: answer checks, page
checks on a snapshot, all/any combinations, a reference solution on every other task), then
times `parse_suite` + `suite_from_spec` on it (the whole of `tracewheel suites add` but the
write) and, over every task, `run_check` on a fixed final answer and final page. Goals: load
and validate < 1 s; checker p50 <= 5 ms per task. No network: the checks are all declarative.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx
import yaml

from tracewheel.agent.suites import CheckContext, PageState, parse_suite, run_check, suite_from_spec

PAGE = PageState.from_snapshot(
    "- Page URL: http://127.0.0.1:8500/orders/7\n- Page Snapshot:\n```yaml\n"
    + "".join(f'- link "Item {i}" [ref=e{i}]\n' for i in range(300))
    + '- heading "Order 7 received"\n- form "Order":\n  - textbox "Email" [ref=e900]: kim@example.com\n```'
)
ANSWER = 'The order is placed: {"order": 7, "items": [{"sku": "A1", "quantity": 2}]}, total $1,234.50.'
CHECKS: list[dict[str, Any]] = [
    {"kind": "contains", "value": "order is placed"},
    {"kind": "equals", "value": ANSWER},
    {"kind": "regex", "pattern": r"\$[\d,]+\.\d\d"},
    {"kind": "number", "value": 1234.5, "tolerance": 0.01},
    {"kind": "json_subset", "value": {"items": [{"sku": "A1"}]}},
    {"kind": "page_url", "pattern": r"/orders/\d+$"},
    {"kind": "page_text", "contains": "Order 7 received"},
    {"kind": "page_field", "role": "textbox", "name": "Email", "equals": "kim@example.com"},
    {"kind": "all", "checks": [{"kind": "contains", "value": "A1"}, {"kind": "page_url", "pattern": "orders"}]},
    {"kind": "any", "checks": [{"kind": "regex", "pattern": "^nope"}, {"kind": "number", "value": 7}]},
]


def suite_yaml(tasks: int) -> str:
    """A suite of `tasks` tasks, the declarative kinds in turn, a reference on every other task."""
    items = []
    for index in range(tasks):
        task: dict[str, Any] = {
            "id": f"task-{index:05d}",
            "prompt": f"Order item {index} and tell me the order number and the total.",
            "start_url": "http://127.0.0.1:8500/",
            "allowed_hosts": ["127.0.0.1:8500"],
            "tools": ["browser_navigate", "browser_click", "browser_snapshot"],
            "group": f"kind-{index % len(CHECKS)}",
            "check": CHECKS[index % len(CHECKS)],
        }
        if index % 2 == 0:
            task["reference"] = {
                "steps": [
                    {"tool": "browser_navigate", "arguments": {"url": "http://127.0.0.1:8500/"}, "reasoning": "Open."},
                    {"tool": "browser_click", "target": {"role": "link", "name": f"Item {index % 300}"}},
                ],
                "answer": ANSWER,
            }
        items.append(task)
    return yaml.safe_dump({"name": "bench", "heldout_share": 0.3, "tasks": items}, sort_keys=False)


async def check_times(text: str) -> list[float]:
    """Seconds of `run_check` per task, every task once."""
    suite = suite_from_spec(parse_suite(text, "bench.yaml"), "bench.yaml")
    times = []
    async with httpx.AsyncClient() as http:
        for task in suite.tasks:
            context = CheckContext(task=task, final_answer=ANSWER, http=http, page=PAGE)
            started = time.perf_counter()
            assert task.check is not None
            await run_check(task.check, context)
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="loads timed (the median is reported)")
    args = parser.parse_args()
    text = suite_yaml(args.tasks)
    loads = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        suite = suite_from_spec(parse_suite(text, "bench.yaml"), "bench.yaml")
        loads.append(time.perf_counter() - started)
    times = sorted(asyncio.run(check_times(text)))
    load_s = statistics.median(loads)
    p50, p99 = times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000
    print(f"suite: {args.tasks} tasks, {len(text) / 1e6:.2f} MB of YAML, {suite.split_sizes}")
    print(f"load + validate: median {load_s:.3f} s of {args.repeats} (goal < 1 s): {'ok' if load_s < 1 else 'MISSED'}")
    print(f"declarative checker per task: p50 {p50:.3f} ms, p99 {p99:.3f} ms (goal p50 <= 5 ms): "
          f"{'ok' if p50 <= 5 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
