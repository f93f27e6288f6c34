"""One model's evaluation on one suite: the result every service reads the same way.

The agent measures it, the trainer keeps it with the job (`eval.json`, `jobs.json`: its JSON
form), `models.v1.trained` carries it (`evaluation_proto`), and the inference gate and the demo
report read it. The aggregate figures are derived from the per-task results whenever those are
given. A result without them (a file written before they existed, an evaluator that reports
only figures) has `task_results=None`, which is not the same as a model that solved nothing.

Figures (over all tasks of a run):
- success rate: tasks whose checker passed / tasks;
- valid tool-call rate: valid calls / attempted calls (parsed calls plus outputs whose
  `<tool_call>` failed to parse); 0 when nothing was attempted;
- right-tool rate: calls naming a tool of the task's reference solution / parsed calls; 0 when
  there were none;
- mean steps (model turns), mean tokens (prompt + completion), mean latency per task (seconds);
- success rate per task template, in the order templates first appear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# fields a file written before per-task results existed may hold: the solved ids alone, which
# cannot say which tasks were run and failed, so they are not a task list
_LEGACY_FIELDS = ("passed_task_ids",)


class TaskResult(BaseModel):
    """One task's outcome and figures, read from its checked trace.

    Attributes:
        task_id: the task's id in its suite.
        passed: the checker's verdict was `passed`.
        template: the task's template (price_lookup, order_form, ...).
        verdict: the checker's verdict (passed, failed, error).
        detail: the checker's explanation.
        steps: model turns.
        tool_calls: parsed tool calls.
        attempted_calls: parsed calls plus outputs whose tool call failed to parse.
        valid_tool_calls: parsed calls that name a session tool with arguments its schema accepts.
        right_tool_calls: parsed calls naming a tool the task's reference solution uses.
        tokens: prompt plus completion tokens.
        latency_s: wall time of the task.
        trace_id: the trace the run was recorded as.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    passed: bool
    template: str = ""
    verdict: str = ""
    detail: str = ""
    steps: int = 0
    tool_calls: int = 0
    attempted_calls: int = 0
    valid_tool_calls: int = 0
    right_tool_calls: int = 0
    tokens: int = 0
    latency_s: float = 0.0
    trace_id: str = ""


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregates(results: Sequence[TaskResult]) -> dict[str, Any]:
    """The aggregate figures of `results`, by `EvalResult` field name."""
    by_template: dict[str, list[bool]] = {}
    for result in results:
        by_template.setdefault(result.template, []).append(result.passed)
    attempted = sum(r.attempted_calls for r in results)
    return {
        "tasks": len(results),
        "success_rate": _ratio(sum(r.passed for r in results), len(results)),
        "valid_tool_call_rate": _ratio(sum(r.valid_tool_calls for r in results), attempted),
        "right_tool_rate": _ratio(sum(r.right_tool_calls for r in results), sum(r.tool_calls for r in results)),
        "mean_steps": _mean([r.steps for r in results]),
        "mean_tokens": _mean([r.tokens for r in results]),
        "mean_latency_s": _mean([r.latency_s for r in results]),
        "success_by_template": {name: _ratio(sum(passed), len(passed)) for name, passed in by_template.items()},
    }


def _same(given: Any, derived: Any) -> bool:
    if isinstance(derived, dict):
        return (
            isinstance(given, dict)
            and given.keys() == derived.keys()
            and all(_same(given[key], value) for key, value in derived.items())
        )
    return isinstance(given, int | float) and math.isclose(given, derived, rel_tol=1e-9, abs_tol=1e-12)


class EvalResult(BaseModel):
    """One model's evaluation on one suite.

    Built from per-task results (`EvalResult(model=..., suite=..., task_results=[...])`), the
    aggregates are derived from them; built from figures alone, `task_results` stays None.

    Attributes:
        model: the model or adapter name that was evaluated.
        suite: the suite it ran.
        tasks: how many tasks the run had.
        success_rate, valid_tool_call_rate, right_tool_rate, mean_steps, mean_tokens,
            mean_latency_s, success_by_template: the figures (module docstring).
        task_results: one result per task, or None when the evaluation did not list them.

    Raises:
        pydantic.ValidationError: a figure given beside the task results contradicts them, or a
            field is unknown or of the wrong type.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = ""
    suite: str = ""
    tasks: int = 0
    success_rate: float = 0.0
    valid_tool_call_rate: float = 0.0
    right_tool_rate: float = 0.0
    mean_steps: float = 0.0
    mean_tokens: float = 0.0
    mean_latency_s: float = 0.0
    success_by_template: dict[str, float] = Field(default_factory=dict)
    task_results: tuple[TaskResult, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_from_tasks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key not in _LEGACY_FIELDS}
        listed = data.get("task_results")
        if listed is None:
            return data
        results = tuple(TaskResult.model_validate(result) for result in listed)
        derived = aggregates(results)
        for name, value in derived.items():
            given = data.get(name)
            if given is not None and not _same(given, value):
                raise ValueError(f"{name} {given!r} contradicts the {len(results)} task results listed ({value!r})")
        return {**data, **derived, "task_results": results}

    @property
    def passed_tasks(self) -> tuple[str, ...] | None:
        """The ids of the tasks solved, or None when the evaluation does not list its tasks."""
        if self.task_results is None:
            return None
        return tuple(r.task_id for r in self.task_results if r.passed)

    @property
    def trace_ids(self) -> list[str]:
        """The traces of the listed tasks (none when the tasks are not listed)."""
        return [r.trace_id for r in self.task_results or ()]

    @property
    def solved(self) -> int:
        """How many tasks passed."""
        return round(self.success_rate * self.tasks)
