"""Gated deployment of trained adapters, and the state that survives restarts.

A `models.v1.trained` event names an adapter and carries its held-out evaluation and the
base model's. The adapter is loaded under its versioned name; the alias moves to it only if it
passes the gate against the model currently behind the alias:

- `strict` (default): its success rate beats the current one by more than `min_gain`;
- `paired`: on the same suite, it solved more of the tasks the two models disagree on than the
  current one did, by a split a one-sided exact sign test puts at p <= `max_p` (a rate gain of a
  task or two on a small suite is within training noise; tracewheel.core.paired);
- `always`: no comparison (the quick demo's random tiny model only).

The previous target stays loaded for rollback. Everything is recorded in
`<home>/inference/deployments.json` (written atomically), so a restart serves the same adapters
and aliases, and a redelivered event is recognised and changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.files import write_json_atomically
from tracewheel.core.paired import PairedSplit, listed_tasks
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.v1 import events_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    deployed: bool
    alias: str
    adapter: str
    previous: str
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """A model's held-out result, as far as the gate reads it.

    Attributes:
        success: success rate.
        suite: the suite it was measured on.
        tasks: how many tasks that run had.
        passed: the ids of the tasks it solved; None when the evaluation did not say.
    """

    success: float
    suite: str = ""
    tasks: int = 0
    passed: tuple[str, ...] | None = None

    @classmethod
    def of(cls, metrics: events_pb2.EvalMetrics) -> Evaluation:
        """From an event's metrics (the solved tasks only where they are listed: `listed_tasks`)."""
        passed = listed_tasks(metrics.passed_task_ids, metrics.success_rate, metrics.tasks)
        return cls(metrics.success_rate, metrics.suite, metrics.tasks, passed)


@dataclass
class DeploymentRecord:
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    evaluations: dict[str, dict] = field(default_factory=dict)  # model name -> Evaluation as dict
    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    decisions: dict[str, dict] = field(default_factory=dict)  # adapter name -> Decision as dict

    @classmethod
    def from_json(cls, data: dict) -> DeploymentRecord:
        # records written before the paired gate kept only each model's success rate
        evaluations = data.setdefault("evaluations", {})
        for name, rate in data.pop("success", {}).items():
            evaluations.setdefault(name, {"success": rate})
        return cls(**data)

    def evaluation(self, model: str) -> Evaluation | None:
        data = self.evaluations.get(model)
        if data is None:
            return None
        passed = data.get("passed")
        return Evaluation(**{**data, "passed": None if passed is None else tuple(passed)})


def gate(
    candidate: Evaluation, current: Evaluation | None, *, mode: str, min_gain: float = 0.0, max_p: float = 0.05
) -> tuple[bool, str]:
    """Whether `candidate` replaces the model evaluated as `current`, and why."""
    if mode == "always":
        return True, "gate disabled (always deploy)"
    if current is None:
        return False, "no evaluation of the current model to compare with; not deploying"
    if mode == "paired":
        return _paired_gate(candidate, current, max_p)
    if candidate.success > current.success + min_gain:
        return True, f"success {candidate.success:.3f} beats {current.success:.3f} (+{min_gain:.3f} required)"
    return False, f"success {candidate.success:.3f} does not beat {current.success:.3f} (+{min_gain:.3f} required)"


def _paired_gate(candidate: Evaluation, current: Evaluation, max_p: float) -> tuple[bool, str]:
    if candidate.passed is None or current.passed is None:
        which = "the candidate's" if candidate.passed is None else "the current model's"
        return False, f"the paired gate needs the tasks each model solved; {which} evaluation does not list them"
    if (candidate.suite, candidate.tasks) != (current.suite, current.tasks):
        return False, (
            f"evaluated on different suites ({candidate.suite!r}, {candidate.tasks} tasks against "
            f"{current.suite!r}, {current.tasks} tasks): not comparable task by task"
        )
    split = PairedSplit.of(candidate.passed, current.passed)
    p = split.p_greater()
    deploy = split.won > split.lost and p <= max_p
    return deploy, (
        f"won {split.won} and lost {split.lost} of {candidate.tasks} tasks against the current model: "
        f"one-sided sign test p {p:.3f} (at most {max_p:g} required)"
    )


class Deployer:
    """Applies trained-model events to a registry and keeps the record on disk."""

    def __init__(
        self,
        registry: ModelRegistry,
        state_file: Path,
        *,
        alias: str,
        mode: str = "strict",
        min_gain: float = 0.0,
        max_p: float = 0.05,
    ) -> None:
        self.registry = registry
        self.state_file = state_file
        self.alias = alias
        self.mode = mode
        self.min_gain = min_gain
        self.max_p = max_p
        self.record = self._read()
        self.restore()
        registry.on_change = self._write

    def _read(self) -> DeploymentRecord:
        if not self.state_file.exists():
            return DeploymentRecord()
        return DeploymentRecord.from_json(json.loads(self.state_file.read_text()))

    def _write(self) -> None:
        self.record.adapters = dict(self.registry.adapters)
        self.record.aliases = dict(self.registry.aliases)
        self.record.history = {k: list(v) for k, v in self.registry.history.items()}
        write_json_atomically(self.state_file, asdict(self.record), indent=2)

    def restore(self) -> None:
        """Reloads the recorded adapters and aliases (skipping adapters whose files are gone)."""
        for name, path in self.record.adapters.items():
            try:
                self.registry.load(name, path)
            except InvalidArgument as exc:
                log.error("cannot restore adapter %s: %s", name, exc)
        for alias, target in self.record.aliases.items():
            if target == self.registry.base_name or target in self.registry.adapters:
                self.registry.aliases[alias] = target
        self.registry.history.update({k: list(v) for k, v in self.record.history.items()})

    def decisions(self) -> list[Decision]:
        """Every decision taken, oldest first."""
        return [Decision(**d) for d in self.record.decisions.values()]

    def apply(self, adapter: str, path: str, evaluation: Evaluation, baseline: Evaluation | None) -> Decision:
        """Loads the adapter, gates it, moves the alias if it passes. Idempotent per adapter.

        Raises:
            InvalidArgument: the adapter cannot be loaded (what is served stays served).
        """
        if adapter in self.record.decisions:
            return Decision(**self.record.decisions[adapter])  # a redelivery: already decided
        self.registry.load(adapter, path)
        self.record.evaluations[adapter] = asdict(evaluation)
        if baseline is not None:
            self.record.evaluations.setdefault(self.registry.base_name, asdict(baseline))
        current_target = self.registry.aliases.get(self.alias, self.registry.base_name)
        deploy, reason = gate(
            evaluation,
            self.record.evaluation(current_target),
            mode=self.mode,
            min_gain=self.min_gain,
            max_p=self.max_p,
        )
        previous = self.registry.set_alias(self.alias, adapter) if deploy else current_target
        decision = Decision(deploy, self.alias, adapter, previous, reason)
        self.record.decisions[adapter] = asdict(decision)
        self._write()
        log.info("adapter %s: %s (%s)", adapter, "deployed" if deploy else "kept as candidate", reason)
        return decision
