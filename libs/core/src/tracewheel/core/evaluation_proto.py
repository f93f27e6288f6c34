"""Conversion between `EvalResult` and tracewheel.v1.EvalResult (servers and event code only)."""

from __future__ import annotations

from pydantic import ValidationError

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.v1 import evaluation_pb2

_TASK_FIELDS = tuple(TaskResult.model_fields)
_FIGURES = ("model", "suite", "tasks", "success_rate", "valid_tool_call_rate", "right_tool_rate", "mean_steps",
            "mean_tokens", "mean_latency_s")  # fmt: skip


def eval_result_to_proto(result: EvalResult) -> evaluation_pb2.EvalResult:
    """The message for `result`; `task_results` is set exactly when the result lists its tasks."""
    message = evaluation_pb2.EvalResult(
        **{name: getattr(result, name) for name in _FIGURES}, success_by_template=result.success_by_template
    )
    if result.task_results is not None:
        message.task_results.SetInParent()  # present even when empty: listed, and no task
        message.task_results.results.extend(
            evaluation_pb2.TaskResult(**task.model_dump()) for task in result.task_results
        )
    return message


def eval_result_from_proto(message: evaluation_pb2.EvalResult) -> EvalResult:
    """The `EvalResult` a message carries.

    Raises:
        InvalidArgument: its figures contradict its task results (the message names which).
    """
    data: dict[str, object] = {name: getattr(message, name) for name in _FIGURES}
    data["success_by_template"] = dict(message.success_by_template)
    if message.HasField("task_results"):
        data["task_results"] = [
            {name: getattr(task, name) for name in _TASK_FIELDS} for task in message.task_results.results
        ]
    try:
        return EvalResult.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument(f"evaluation of {message.model!r} on {message.suite!r}: {exc}") from exc
