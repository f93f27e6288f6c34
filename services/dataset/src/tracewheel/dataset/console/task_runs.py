"""One task's runs across models: its stored traces and its evaluation runs, grouped by model.

Stored traces are the runs published to the store (agent runs, demonstrations, imports); evaluation
runs are the per-task results the gate's recorded decisions carry (the candidate's and the model it
was compared with), whose traces stay with the agent. A base model's cached evaluation appears in
many decisions: it is listed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tracewheel.core.evaluation import EvalResult
from tracewheel.dataset.records import StoredTrace

# The agent's suite references: `NAME`, `NAME:SPLIT`, and the shop's own `train` / `heldout`,
# which its tasks and evaluations carry as their suite (tracewheel.agent.suites.SuiteRef).
SHOP = "shop"
_SHOP_SPLITS = ("train", "heldout")


def names_suite(reference: str, suite: str) -> bool:
    """Whether a trace's or an evaluation's suite `reference` is the suite named `suite`."""
    name = reference.split(":", 1)[0]
    return name == suite or (suite == SHOP and name in _SHOP_SPLITS)


@dataclass(frozen=True)
class StoredRun:
    """A stored trace of the task."""

    trace_id: str
    created_at: str
    verdict: str
    status: str


@dataclass(frozen=True)
class EvalRun:
    """The task's result in one evaluation a gate decision recorded."""

    trace_id: str
    passed: bool
    verdict: str
    detail: str
    evaluation_suite: str
    deployment: str  # the adapter whose decision recorded it
    role: str  # "candidate" or "compared with"


@dataclass
class ModelRuns:
    """Every run of the task by one model."""

    model: str
    stored: list[StoredRun] = field(default_factory=list)
    evaluations: list[EvalRun] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(run.verdict == "passed" for run in self.stored) + sum(run.passed for run in self.evaluations)

    @property
    def runs(self) -> int:
        return len(self.stored) + len(self.evaluations)


@dataclass(frozen=True)
class RecordedEvaluation:
    """An evaluation as a gate decision recorded it: the deployment and the evaluation's role there."""

    deployment: str
    role: str
    result: EvalResult


def runs_by_model(
    suite: str, task_id: str, stored: Iterable[StoredTrace], evaluations: Iterable[RecordedEvaluation]
) -> list[ModelRuns]:
    """The task's stored traces and evaluation results grouped by model (models in order of their
    first run: stored traces as given, newest first, then evaluations); traces of another suite's
    task with the same id, and an evaluation's result listed twice, are left out."""
    groups: dict[str, ModelRuns] = {}
    for item in stored:
        trace = item.trace
        if trace.task is None or trace.task.task_id != task_id or not names_suite(trace.task.suite, suite):
            continue
        verdict = str(trace.outcome.verdict) if trace.outcome else "unspecified"
        run = StoredRun(trace.id, trace.created_at.isoformat(timespec="seconds"), verdict, str(item.status))
        groups.setdefault(trace.model, ModelRuns(trace.model)).stored.append(run)
    seen: set[tuple[str, str]] = set()
    for recorded in evaluations:
        result = recorded.result
        if not names_suite(result.suite, suite):
            continue
        for task in result.task_results or ():
            if task.task_id != task_id or (result.model, task.trace_id) in seen:
                continue
            seen.add((result.model, task.trace_id))
            evaluated = EvalRun(
                task.trace_id, task.passed, task.verdict, task.detail, result.suite, recorded.deployment, recorded.role
            )
            groups.setdefault(result.model, ModelRuns(result.model)).evaluations.append(evaluated)
    return list(groups.values())


def recorded_evaluations(
    decisions: Sequence[tuple[str, EvalResult | None, EvalResult | None]],
) -> list[RecordedEvaluation]:
    """(adapter, candidate, compared with) per decision -> the evaluations they recorded."""
    recorded = []
    for deployment, candidate, compared_with in decisions:
        if candidate is not None:
            recorded.append(RecordedEvaluation(deployment, "candidate", candidate))
        if compared_with is not None:
            recorded.append(RecordedEvaluation(deployment, "compared with", compared_with))
    return recorded
