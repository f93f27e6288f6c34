"""What the deployments pages show of a gate decision: both evaluations side by side and the tasks
won and lost (plain Python over `tracewheel.core.evaluation`, no gRPC).

Whether two evaluations compare task by task is the gate's call (inference's `gate.py`): the page
lists won and lost tasks only for a decision that recorded a split, and names them with
`core.paired.TaskSplit`, the same split the gate counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.paired import TaskSplit


def path_part(name: str) -> str:
    """`name` quoted as one URL path segment (a `/` in it too)."""
    return quote(name, safe="")


@dataclass(frozen=True)
class TaskPair:
    """One task as both models ran it.

    Attributes:
        task_id: the task's id in the suite.
        template: its template (price_lookup, ...).
        candidate: the candidate's result (None: the candidate's evaluation does not list it).
        compared: the compared model's result (None: its evaluation does not list it).
    """

    task_id: str
    template: str
    candidate: TaskResult | None
    compared: TaskResult | None


@dataclass(frozen=True)
class TaskComparison:
    """The tasks only one of the two models solved, and how many both solved."""

    won: list[TaskPair]
    lost: list[TaskPair]
    both: int


def compare_tasks(candidate: EvalResult, compared: EvalResult) -> TaskComparison | None:
    """The tasks the candidate won and lost against `compared` (None: one does not list its tasks)."""
    solved, before = candidate.passed_tasks, compared.passed_tasks
    if solved is None or before is None:
        return None
    split = TaskSplit.of(solved, before)
    mine = {result.task_id: result for result in candidate.task_results or ()}
    theirs = {result.task_id: result for result in compared.task_results or ()}

    def pair(task_id: str) -> TaskPair:
        either = mine.get(task_id) or theirs[task_id]
        return TaskPair(task_id, either.template, mine.get(task_id), theirs.get(task_id))

    return TaskComparison([pair(t) for t in split.won], [pair(t) for t in split.lost], len(split.both))


@dataclass(frozen=True)
class FigureRow:
    """One figure of both evaluations, formatted ("" where a model has no evaluation)."""

    label: str
    candidate: str
    compared: str


def _rate(value: float) -> str:
    return f"{value:.1%}"


_FIGURES: list[tuple[str, Callable[[EvalResult], str]]] = [
    ("suite", lambda r: r.suite or "?"),
    ("tasks", lambda r: str(r.tasks)),
    ("success", lambda r: f"{_rate(r.success_rate)} ({r.solved}/{r.tasks})"),
    ("valid tool calls", lambda r: _rate(r.valid_tool_call_rate)),
    ("right tool", lambda r: _rate(r.right_tool_rate)),
    ("mean steps", lambda r: f"{r.mean_steps:.1f}"),
    ("mean tokens", lambda r: f"{r.mean_tokens:.0f}"),
    ("mean latency", lambda r: f"{r.mean_latency_s:.1f} s"),
]


def figure_rows(candidate: EvalResult | None, compared: EvalResult | None) -> list[FigureRow]:
    """The figures of both evaluations, one row each."""
    return [
        FigureRow(label, show(candidate) if candidate else "", show(compared) if compared else "")
        for label, show in _FIGURES
    ]


def template_rows(candidate: EvalResult | None, compared: EvalResult | None) -> list[FigureRow]:
    """Success per task template, the candidate's templates first, then any only the other has."""
    mine = candidate.success_by_template if candidate else {}
    theirs = compared.success_by_template if compared else {}
    names = list(dict.fromkeys([*mine, *theirs]))
    return [
        FigureRow(
            name or "(none)",
            _rate(mine[name]) if name in mine else "",
            _rate(theirs[name]) if name in theirs else "",
        )
        for name in names
    ]
