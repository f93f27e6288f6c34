"""Agent step overhead: the loop's own time per step, model and browser excluded.

    .venv/bin/python bench/agent.py [--runs 40 --steps 50]

A scripted instant model (tracewheel.agent.testing.ScriptedLLM: real ChatCompletion objects)
proposes one browser_click per turn with reasoning; an instant tool session answers each with a
~2 kB page snapshot (the task site's detail-page size). A step is the time from one assistant
event to the next; the time spent inside the stand-ins (building the completion, answering the
call) is subtracted, so what is left is the loop: messages, trace models, truncation, events.
Goal: p50 <= 10 ms, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.loop import AgentEvent, run_agent
from tracewheel.agent.testing import ScriptedLLM, StaticToolSession, assistant, tool_call
from tracewheel.agent.tools import ToolOutput

SNAPSHOT = (
    "### Page state\n- Page URL: http://127.0.0.1:8400/item/TW-0001\n```yaml\n"
    + "".join(
        f'- link "Related item number {i}" [ref=e{i}] [cursor=pointer]:\n  - /url: /item/TW-{i:04d}\n'
        for i in range(30)
    )
    + "```"
)


class _TimedTools(StaticToolSession):
    def __init__(self) -> None:
        super().__init__(("browser_navigate", "browser_click", "browser_snapshot"))
        self.spent = 0.0

    async def call_tool(self, name: str, arguments_json: str) -> ToolOutput:
        started = time.perf_counter()
        output = ToolOutput(SNAPSHOT)
        self.spent += time.perf_counter() - started
        return output


async def _one_run(steps: int) -> list[tuple[float, float]]:
    spent_model = [0.0]

    def answer(request: dict) -> dict:
        started = time.perf_counter()
        message = assistant(
            None,
            tool_calls=[tool_call("browser_click", {"element": 'link "Related item number 3"', "ref": "e3"})],
            reasoning="The related item is the one the task asks about; open it.",
        )
        spent_model[0] += time.perf_counter() - started
        return message

    llm = ScriptedLLM([answer], repeat_last=True)
    tools = _TimedTools()
    marks: list[tuple[float, float]] = []

    def on_event(event: AgentEvent) -> None:
        if event.kind == "assistant":
            marks.append((time.perf_counter(), spent_model[0] + tools.spent))

    config = LoopOptions(max_steps=steps, result_char_limit=6000)
    await run_agent("Find the related item.", llm=llm, model="bench", tools=tools, config=config, on_event=on_event)
    return [((t1 - t0) - (s1 - s0), t1 - t0) for (t0, s0), (t1, s1) in itertools.pairwise(marks)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(_one_run(5))  # warm-up: imports, pydantic schema caches
    samples: list[tuple[float, float]] = []
    for _ in range(args.runs):
        samples += asyncio.run(_one_run(args.steps))
    ms = [loop * 1000 for loop, _ in samples]
    whole = [total * 1000 for _, total in samples]
    p50, p99 = _percentile(ms, 0.5), _percentile(ms, 0.99)
    print(f"agent step overhead over {len(ms)} steps ({args.runs} runs x {args.steps} steps)")
    print(f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   mean {statistics.fmean(ms):.3f} ms   max {max(ms):.3f} ms")
    print(f"  whole step incl. stand-ins: p50 {_percentile(whole, 0.5):.3f} ms   p99 {_percentile(whole, 0.99):.3f} ms")
    print(f"  goal p50 <= 10 ms: {'met' if p50 <= 10 else 'MISSED'};  p99 <= 50 ms: {'met' if p99 <= 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
