"""Gated deployment of trained adapters, and the state that survives restarts.

A `models.v1.trained` event names an adapter and carries its held-out evaluation and the
base model's. With a `Provenance`, the event is first checked against what the trainer recorded
(provenance.py: the adapter inside the adapters folder, trained on the served base model, the
evaluation equal to the job's eval.json); a claim that does not match is refused, and the refusal
is recorded as the adapter's decision. The adapter is loaded under its versioned name; the alias
moves to it only if it passes the gate (`gate.py`) against the model currently behind the alias.
The previous target stays loaded for rollback.

Everything is recorded in `<home>/inference/deployments.json` (written atomically): adapters,
aliases and their history, each model's evaluation, and each decision with the gate it was
taken under, both evaluations and the reason. A restart serves the same adapters and aliases, a
redelivered event is recognised and changes nothing, and `explain` (gRPC `ExplainDeployment`,
`tracewheel models explain`) says later why an adapter was or was not deployed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracewheel.core.errors import InvalidArgument, NotFound
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.files import write_json_atomically
from tracewheel.core.paired import PairedSplit
from tracewheel.inference.adapters import ModelRegistry
from tracewheel.inference.gate import DeployGate, GateMode
from tracewheel.inference.provenance import Provenance, UnverifiedAdapter

log = logging.getLogger(__name__)


class Decision(BaseModel):
    """The gate's decision on one adapter, as recorded.

    Attributes:
        deployed: the alias moved to the adapter.
        alias: the alias the gate was asked to move.
        adapter: the adapter's name.
        previous: the alias's target when the gate ran: the model the adapter was compared with.
        reason: why, in words, with the figures compared.
        gate: the rule it was decided under (None: recorded before decisions kept it).
        candidate: the adapter's evaluation (None: recorded before decisions kept it).
        compared_with: `previous`'s evaluation (None: it had none, or recorded before decisions kept it).
        split: tasks won and lost against `previous` (None: not comparable task by task).
        refused: the event was refused before the gate: its adapter or evaluation does not match
            what the trainer recorded (the reason says what); a later event may still decide it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    deployed: bool
    alias: str
    adapter: str
    previous: str
    reason: str
    gate: DeployGate | None = None
    candidate: EvalResult | None = None
    compared_with: EvalResult | None = None
    split: PairedSplit | None = None
    refused: bool = False


def _legacy_evaluation(model: str, data: dict[str, Any]) -> dict[str, Any]:
    """An evaluation as records before EvalResult kept it ({success, suite, tasks, passed}); the
    solved ids alone are no task list, so it reads as not listing its tasks."""
    if "success" not in data:
        return data
    return {
        "model": model,
        "suite": data.get("suite", ""),
        "tasks": data.get("tasks", 0),
        "success_rate": data["success"],
    }


class DeploymentRecord(BaseModel):
    """What `deployments.json` holds."""

    model_config = ConfigDict(extra="forbid")

    adapters: dict[str, str] = Field(default_factory=dict)  # name -> path
    evaluations: dict[str, EvalResult] = Field(default_factory=dict)  # model name -> its latest evaluation
    aliases: dict[str, str] = Field(default_factory=dict)
    history: dict[str, list[str]] = Field(default_factory=dict)
    decisions: dict[str, Decision] = Field(default_factory=dict)  # adapter name -> the gate's decision

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentRecord:
        """The record in a state file, including files written by earlier versions."""
        evaluations = data.setdefault("evaluations", {})
        for name, rate in data.pop("success", {}).items():  # before the paired gate: rates only
            evaluations.setdefault(name, {"success": rate})
        data["evaluations"] = {name: _legacy_evaluation(name, value) for name, value in evaluations.items()}
        return cls.model_validate(data)

    def evaluation(self, model: str) -> EvalResult | None:
        return self.evaluations.get(model)


class Deployer:
    """Applies trained-model events to a registry and keeps the record on disk."""

    def __init__(
        self,
        registry: ModelRegistry,
        state_file: Path,
        *,
        alias: str,
        mode: GateMode = "strict",
        min_gain: float = 0.0,
        max_p: float = 0.05,
        provenance: Provenance | None = None,
    ) -> None:
        self.registry = registry
        self.provenance = provenance  # None: events are not checked (direct use, tests)
        self.state_file = state_file
        self.alias = alias
        self.gate = DeployGate(mode, min_gain, max_p)
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
        write_json_atomically(self.state_file, self.record.model_dump(mode="json"), indent=2)

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
        return list(self.record.decisions.values())

    def explain(self, adapter: str) -> Decision:
        """The recorded decision on `adapter`.

        Raises:
            NotFound: the gate was never given that adapter.
        """
        decision = self.record.decisions.get(adapter)
        if decision is None:
            raise NotFound(f"no deployment decision recorded for adapter {adapter!r}")
        return decision

    def apply_trained(
        self, adapter: str, path: str, evaluation: EvalResult | None, baseline: EvalResult | None
    ) -> Decision:
        """A models.v1.trained event: checked against the trainer's record, then gated (`apply`).
        A claim that does not match is refused and recorded; nothing served changes.

        Args:
            evaluation: the adapter's evaluation in the event (None: it carries none).
            baseline: the base model's (None: none).

        Raises:
            InvalidArgument: a verified adapter cannot be loaded (what is served stays served).
        """
        earlier = self.record.decisions.get(adapter)
        if earlier is not None and not earlier.refused:
            return earlier  # a redelivery: already decided
        if self.provenance is not None:
            try:
                self.provenance.verify(path, evaluation, baseline)
            except UnverifiedAdapter as exc:
                return self._refuse(adapter, str(exc))
        return self.apply(adapter, path, evaluation or EvalResult(), baseline)

    def _refuse(self, adapter: str, why: str) -> Decision:
        current = self.registry.aliases.get(self.alias, self.registry.base_name)
        reason = f"refused before the gate: {why}"
        decision = Decision(
            deployed=False, alias=self.alias, adapter=adapter, previous=current, reason=reason, refused=True
        )
        self.record.decisions[adapter] = decision
        self._write()
        log.error("adapter %s: %s", adapter, reason)
        return decision

    def apply(self, adapter: str, path: str, evaluation: EvalResult, baseline: EvalResult | None) -> Decision:
        """Loads the adapter, gates it, moves the alias if it passes. Idempotent per adapter.

        Raises:
            InvalidArgument: the adapter cannot be loaded (what is served stays served).
        """
        if adapter in self.record.decisions and not self.record.decisions[adapter].refused:
            return self.record.decisions[adapter]  # a redelivery: already decided
        self.registry.load(adapter, path)
        self.record.evaluations[adapter] = evaluation
        recorded = self.record.evaluations.get(self.registry.base_name)
        if baseline is not None and (recorded is None or recorded.suite != baseline.suite):
            # the base model's figures on the suite the candidate was scored on (the trainer's eval_suite)
            self.record.evaluations[self.registry.base_name] = baseline
        current = self.registry.aliases.get(self.alias, self.registry.base_name)
        compared_with = self.record.evaluation(current)
        verdict = self.gate.decide(evaluation, compared_with)
        if verdict.deploy:
            self.registry.set_alias(self.alias, adapter)
        decision = Decision(
            deployed=verdict.deploy,
            alias=self.alias,
            adapter=adapter,
            previous=current,
            reason=verdict.reason,
            gate=self.gate,
            candidate=evaluation,
            compared_with=compared_with,
            split=verdict.split,
        )
        self.record.decisions[adapter] = decision
        self._write()
        log.info("adapter %s: %s (%s)", adapter, "deployed" if verdict.deploy else "kept as candidate", verdict.reason)
        return decision

    def follow(self, alias: str, adapter: str, path: str, evaluation: EvalResult | None) -> bool:
        """Serves a deployment decided elsewhere (another replica's gate, a models.v1.deployed event):
        loads the adapter if it is not loaded and points `alias` at it ("": the base model).
        Idempotent; returns whether anything changed.

        Raises:
            InvalidArgument: the adapter cannot be loaded from `path` (what is served stays served).
        """
        target = adapter or self.registry.base_name
        if adapter and adapter not in self.registry.adapters:
            if not path:
                raise InvalidArgument(f"the deployment of {adapter!r} names no adapter path to load it from")
            self.registry.load(adapter, path)
        if adapter and evaluation is not None and adapter not in self.record.evaluations:
            self.record.evaluations[adapter] = evaluation
            self._write()
        if self.registry.aliases.get(alias) == target:
            return False
        self.registry.set_alias(alias, target)
        log.info("alias %s follows the deployment of %s", alias, target)
        return True
