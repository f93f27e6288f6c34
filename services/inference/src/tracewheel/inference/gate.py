"""The deployment gate: does a trained adapter replace the model behind the alias? (domain)

It reads two `EvalResult`s, the candidate's and the current model's, and answers with a
`GateDecision` whose reason names the figures compared:

- `strict` (default): the candidate's success rate beats the current one by more than `min_gain`;
- `paired`: on the same suite, the candidate solved more of the tasks the two models disagree on
  than the current one did, by a split a one-sided exact sign test puts at p <= `max_p` (a rate
  gain of a task or two on a small suite is within training noise; tracewheel.core.paired);
- `always`: no comparison (the quick demo's random tiny model only).

Whatever the mode, the decision carries the task-by-task split when both results list their
tasks on the same suite, so an explanation can show it. Results on different suites (a team's
suite against the shop's held-out) are never compared: only `always` deploys then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tracewheel.core.evaluation import EvalResult
from tracewheel.core.paired import PairedSplit

GateMode = Literal["strict", "paired", "always"]


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided.

    Attributes:
        deploy: the alias moves to the candidate.
        reason: why, in words, with the figures compared.
        split: the tasks each model solved and the other did not; None when the two results are
            not comparable task by task (a result does not list its tasks, or the suites differ).
    """

    deploy: bool
    reason: str
    split: PairedSplit | None = None


def paired_split(candidate: EvalResult, current: EvalResult) -> PairedSplit | None:
    """The task-by-task split of two results, or None when they are not comparable."""
    solved, before = candidate.passed_tasks, current.passed_tasks
    if solved is None or before is None or (candidate.suite, candidate.tasks) != (current.suite, current.tasks):
        return None
    return PairedSplit.of(solved, before)


@dataclass(frozen=True)
class DeployGate:
    """The rule a candidate must pass (settings `deploy_gate`, `deploy_min_gain`, `deploy_max_p`).

    Attributes:
        mode: strict | paired | always (module docstring).
        min_gain: strict: the success rate must beat the current one by more than this.
        max_p: paired: the one-sided sign test's p must be at most this.
    """

    mode: GateMode = "strict"
    min_gain: float = 0.0
    max_p: float = 0.05

    def describe(self) -> str:
        """The rule in words."""
        if self.mode == "strict":
            return f"strict: the success rate must beat the current model's by more than {self.min_gain:g}"
        if self.mode == "paired":
            return f"paired: win more of the differing tasks, at one-sided sign-test p <= {self.max_p:g}"
        return "always: deploys without comparing"

    def decide(self, candidate: EvalResult, current: EvalResult | None) -> GateDecision:
        """Whether `candidate` replaces the model whose evaluation is `current` (None: it has none)."""
        split = None if current is None else paired_split(candidate, current)
        if self.mode == "always":
            return GateDecision(True, "gate disabled (always deploy)", split)
        if current is None:
            return GateDecision(False, "no evaluation of the current model to compare with; not deploying")
        if self.mode == "paired":
            return self._paired(candidate, current, split)
        if candidate.suite and current.suite and candidate.suite != current.suite:  # "": recorded without one
            return GateDecision(
                False,
                f"evaluated on different suites (the candidate on {candidate.suite!r}, the current model on "
                f"{current.suite!r}): success rates not comparable; evaluate both on one suite (the trainer's "
                "eval_suite)",
            )
        gain = f"(+{self.min_gain:.3f} required)"
        if candidate.success_rate > current.success_rate + self.min_gain:
            reason = f"success {candidate.success_rate:.3f} beats {current.success_rate:.3f} {gain}"
            return GateDecision(True, reason, split)
        reason = f"success {candidate.success_rate:.3f} does not beat {current.success_rate:.3f} {gain}"
        return GateDecision(False, reason, split)

    def _paired(self, candidate: EvalResult, current: EvalResult, split: PairedSplit | None) -> GateDecision:
        if candidate.passed_tasks is None or current.passed_tasks is None:
            which = "the candidate's" if candidate.passed_tasks is None else "the current model's"
            reason = f"the paired gate needs the tasks each model solved; {which} evaluation does not list them"
            return GateDecision(False, reason)
        if split is None:
            return GateDecision(
                False,
                f"evaluated on different suites ({candidate.suite!r}, {candidate.tasks} tasks against "
                f"{current.suite!r}, {current.tasks} tasks): not comparable task by task",
            )
        p = split.p_greater()
        deploy = split.won > split.lost and p <= self.max_p
        reason = (
            f"won {split.won} and lost {split.lost} of {candidate.tasks} tasks against the current model: "
            f"one-sided sign test p {p:.3f} (at most {self.max_p:g} required)"
        )
        return GateDecision(deploy, reason, split)
