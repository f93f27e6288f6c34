"""Two models compared task by task on the same suite.

A success rate hides which tasks moved: on twenty tasks, a round that solves three new tasks and
loses two scores like one that solves one new task and loses none, and training seeds alone move
a 135M student by several tasks (docs/lab/). Counting the tasks only one of the
models solved, and asking how likely so uneven a split is between two equally good models (the
exact sign test: ties carry no information), says whether a gain is more than that noise. The
deployment gate (`TW_INFERENCE_DEPLOY_GATE=paired`) and the demo report both read it from here,
with the solved tasks of an `EvalResult` (`passed_tasks`, None when it does not list its tasks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedSplit:
    """How a candidate's solved tasks compare with a reference's on the same suite.

    Attributes:
        won: tasks the candidate solved and the reference did not.
        lost: tasks the reference solved and the candidate did not.
        both: tasks both solved.
    """

    won: int
    lost: int
    both: int

    @classmethod
    def of(cls, candidate: Iterable[str], reference: Iterable[str]) -> PairedSplit:
        """The split of two sets of solved task ids."""
        return TaskSplit.of(candidate, reference).counts()

    def p_greater(self) -> float:
        """One-sided exact sign test: the chance that a candidate no better than the reference
        wins at least `won` of the `won + lost` tasks on which the two differ."""
        n = self.won + self.lost
        return float(sum(math.comb(n, k) for k in range(self.won, n + 1)) / 2**n)

    def p_two_sided(self) -> float:
        """Two-sided exact sign test: the chance of a split at least this uneven either way
        between two equally good models (1.0 when they differ on no task)."""
        n = self.won + self.lost
        tail = float(sum(math.comb(n, k) for k in range(min(self.won, self.lost) + 1)) / 2**n)
        return min(1.0, 2 * tail)


@dataclass(frozen=True)
class TaskSplit:
    """Which tasks each of two models solved and the other did not, by id (what `PairedSplit` counts).

    Attributes:
        won: solved by the candidate only, in the candidate's order.
        lost: solved by the reference only, in the reference's order.
        both: solved by both, in the candidate's order.
    """

    won: tuple[str, ...]
    lost: tuple[str, ...]
    both: tuple[str, ...]

    @classmethod
    def of(cls, candidate: Iterable[str], reference: Iterable[str]) -> TaskSplit:
        """The split of two collections of solved task ids (a repeated id counts once)."""
        solved, before = dict.fromkeys(candidate), dict.fromkeys(reference)
        return cls(
            tuple(task for task in solved if task not in before),
            tuple(task for task in before if task not in solved),
            tuple(task for task in solved if task in before),
        )

    def counts(self) -> PairedSplit:
        """The split as counts, for the sign test."""
        return PairedSplit(len(self.won), len(self.lost), len(self.both))
