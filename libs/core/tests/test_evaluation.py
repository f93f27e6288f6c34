"""EvalResult: figures derived from the per-task results, and round trips through JSON and proto
that keep "tasks not listed" apart from "listed, none solved"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.evaluation_proto import eval_result_from_proto, eval_result_to_proto
from tracewheel.v1 import evaluation_pb2


def task(task_id: str, passed: bool, template: str = "price_lookup", **figures: float) -> TaskResult:
    return TaskResult(task_id=task_id, passed=passed, template=template, trace_id=f"trace-{task_id}", **figures)


def listed() -> EvalResult:
    return EvalResult(
        model="agent-1",
        suite="heldout",
        task_results=[
            task("t1", True, steps=2, tool_calls=2, attempted_calls=3, valid_tool_calls=2, right_tool_calls=1,
                 tokens=10, latency_s=1.5),
            task("t2", False, "order_form", steps=4, tool_calls=2, attempted_calls=2, valid_tool_calls=1, tokens=30,
                 latency_s=0.5),
            task("t3", False, steps=3),
        ],
    )  # fmt: skip


def test_the_figures_are_derived_from_the_task_results() -> None:
    result = listed()
    assert (result.tasks, result.success_rate, result.solved) == (3, 1 / 3, 1)
    assert result.valid_tool_call_rate == 3 / 5 and result.right_tool_rate == 1 / 4
    assert (result.mean_steps, result.mean_tokens, result.mean_latency_s) == (3.0, 40 / 3, 2 / 3)
    assert result.success_by_template == {"price_lookup": 0.5, "order_form": 0.0}
    assert result.passed_tasks == ("t1",) and result.trace_ids == ["trace-t1", "trace-t2", "trace-t3"]


def test_figures_that_contradict_the_task_results_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"success_rate 0\.5 contradicts the 1 task results listed"):
        EvalResult(success_rate=0.5, task_results=[task("t1", False)])
    # the same figures, as a JSON round trip gives them back, are accepted
    assert EvalResult.model_validate(listed().model_dump()) == listed()


def test_figures_alone_do_not_list_tasks() -> None:
    figures = EvalResult(model="base", suite="heldout", tasks=20, success_rate=0.05)
    assert figures.passed_tasks is None and figures.trace_ids == [] and figures.solved == 1
    none_solved = EvalResult(task_results=[task("t1", False), task("t2", False)])
    assert none_solved.passed_tasks == () and none_solved.success_rate == 0.0


@pytest.mark.parametrize(
    "result",
    [
        listed(),
        EvalResult(model="base", suite="heldout", tasks=4, success_rate=0.0),  # tasks not listed
        EvalResult(model="m", suite="heldout", task_results=[task("t1", False), task("t2", False)]),  # none solved
        EvalResult(model="m", suite="empty", task_results=[]),  # listed, and no task at all
    ],
)
def test_json_and_proto_round_trips_are_lossless(result: EvalResult) -> None:
    assert EvalResult.model_validate_json(result.model_dump_json()) == result
    message = eval_result_to_proto(result)
    assert message.HasField("task_results") == (result.task_results is not None)
    decoded = eval_result_from_proto(evaluation_pb2.EvalResult.FromString(message.SerializeToString()))
    assert decoded == result


def test_not_listed_and_none_solved_differ_on_the_wire() -> None:
    not_listed = eval_result_to_proto(EvalResult(suite="heldout", tasks=2))
    none_solved = eval_result_to_proto(EvalResult(suite="heldout", task_results=[task("a", False), task("b", False)]))
    assert eval_result_from_proto(not_listed).passed_tasks is None
    assert eval_result_from_proto(none_solved).passed_tasks == ()
    assert eval_result_from_proto(evaluation_pb2.EvalResult()).passed_tasks is None  # an empty message


def test_a_message_whose_figures_contradict_its_tasks_is_an_invalid_argument() -> None:
    message = eval_result_to_proto(listed())
    message.success_rate = 1.0
    with pytest.raises(InvalidArgument, match=r"evaluation of 'agent-1' on 'heldout'"):
        eval_result_from_proto(message)


def test_files_written_with_solved_ids_only_read_as_not_listed() -> None:
    older = {"model": "base", "suite": "heldout", "tasks": 4, "success_rate": 0.5, "passed_task_ids": ["a", "b"]}
    assert EvalResult.model_validate(older).passed_tasks is None
