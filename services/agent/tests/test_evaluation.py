"""Evaluation on a 2-task suite: reference replay (all pass) vs the tiny model, with the
markdown table and PNG plot written side by side."""

import json
from pathlib import Path

import openai
import pytest

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.evaluation import evaluate, task_result
from tracewheel.agent.report import report_markdown, write_reports
from tracewheel.agent.tasks import load_suite
from tracewheel.agent.tool_schemas import TASK_TOOLS
from tracewheel.agent.tools import LocalGateway
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.evaluation_proto import eval_result_from_proto, eval_result_to_proto
from tracewheel.core.trace import Trace, validate_trace


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_replay_vs_tiny_model_report(
    gateway: LocalGateway, site_url: str, inference_service, tmp_path: Path
) -> None:
    tasks = load_suite("heldout", 0, size=2, base_url=site_url)
    config = LoopOptions(tools=TASK_TOOLS, max_steps=2, time_limit_s=60)
    traces: list[Trace] = []

    async def keep(trace: Trace) -> None:
        traces.append(trace)

    demo = await evaluate(
        tasks, factory=gateway, site_url=site_url, model="reference", config=config, mode="replay", on_trace=keep
    )
    assert demo.success_rate == 1.0 and demo.valid_tool_call_rate == 1.0 and demo.right_tool_rate > 0.5
    async with openai.AsyncOpenAI(base_url=inference_service.http_url, api_key="x", max_retries=0) as llm:
        model = await evaluate(
            tasks, factory=gateway, site_url=site_url, model="agent", llm=llm, config=config, on_trace=keep
        )
    assert model.tasks == 2 and 0.0 <= model.success_rate <= 1.0
    assert model.mean_tokens > 0 and model.mean_steps >= 1
    assert len(traces) == 4 and all(validate_trace(t.model_dump(mode="json")) for t in traces)
    assert sorted(t.id for t in traces) == sorted(demo.trace_ids + model.trace_ids)

    paths = write_reports([demo, model], tmp_path / "report")
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    table = paths["markdown"].read_text()
    assert "| task success | 1.000 |" in table and "agent" in table
    assert json.loads(paths["json"].read_text())[0]["success_rate"] == 1.0
    metrics = eval_result_to_proto(model)
    assert metrics.model == "agent" and metrics.suite == "heldout" and metrics.tasks == 2


def test_metrics_count_parse_errors_as_attempts_and_unknown_tools_as_invalid() -> None:
    task = load_suite("train", 0, size=1)[0]
    calls = [
        {"id": "a", "function": {"name": task.reference[0].tool, "arguments": "{}"}},
        {"id": "b", "function": {"name": "made_up", "arguments": "{}"}},
    ]
    trace = Trace.model_validate(
        {
            "id": "trace-x",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": calls},
                {"role": "assistant", "content": "answer"},
            ],
            "outcome": {"verdict": "passed", "score": 1.0},
            "metadata": {
                "parse_errors": ["<tool_call>oops"],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
                "extra": {"steps": "2", "invalid_tool_calls": "1"},
            },
        }
    )
    result = task_result(task, trace, 1.5)
    report = EvalResult(model="m", suite="train", task_results=[result])
    assert (result.attempted_calls, result.valid_tool_calls, result.right_tool_calls) == (3, 1, 1)
    assert report.valid_tool_call_rate == pytest.approx(1 / 3) and report.right_tool_rate == 0.5
    assert report.mean_tokens == 10 and report.mean_steps == 2 and report.success_rate == 1.0
    assert "| mean steps | 2.000 |" in report_markdown([report])


def test_success_by_template_and_solved_tasks_reach_the_metrics_payload() -> None:
    def result(template: str, passed: bool) -> TaskResult:
        return TaskResult(
            task_id=f"t-{template}-{passed}",
            template=template,
            passed=passed,
            verdict="passed" if passed else "failed",
            detail="",
            steps=1,
            tool_calls=0,
            attempted_calls=0,
            valid_tool_calls=0,
            right_tool_calls=0,
            tokens=1,
            latency_s=0.1,
            trace_id="trace-x",
        )

    results = [result("order_form", True), result("price_lookup", False), result("order_form", False)]
    report = EvalResult(model="m", suite="heldout", task_results=results)
    assert report.success_by_template == {"order_form": 0.5, "price_lookup": 0.0}
    assert dict(eval_result_to_proto(report).success_by_template) == {"order_form": 0.5, "price_lookup": 0.0}
    assert eval_result_from_proto(eval_result_to_proto(report)).passed_tasks == ("t-order_form-True",)
