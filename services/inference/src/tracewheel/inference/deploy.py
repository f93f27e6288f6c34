"""Gated deployment of trained adapters, and the state that survives restarts.

A `models.v1.trained` event names an adapter and carries its held-out evaluation and the
base model's. The adapter is loaded under its versioned name; the alias moves to it only if
its success rate beats the model currently behind the alias by more than `min_gain`
(`gate="always"` skips the comparison: the quick demo's random tiny model only). The previous
target stays loaded for rollback. Everything is recorded in `<home>/inference/deployments.json`
(written atomically), so a restart serves the same adapters and aliases, and a redelivered
event is recognised and changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tracewheel.core.errors import InvalidArgument
from tracewheel.inference.adapters import ModelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    deployed: bool
    alias: str
    adapter: str
    previous: str
    reason: str


@dataclass
class DeploymentRecord:
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    success: dict[str, float] = field(default_factory=dict)  # model name -> held-out success rate
    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    decisions: dict[str, dict] = field(default_factory=dict)  # adapter name -> Decision as dict


def gate(candidate: float, current: float | None, *, mode: str, min_gain: float) -> tuple[bool, str]:
    """Whether a candidate with success rate `candidate` replaces one with `current`."""
    if mode == "always":
        return True, "gate disabled (always deploy)"
    if current is None:
        return False, "no evaluation of the current model to compare with; not deploying"
    if candidate > current + min_gain:
        return True, f"success {candidate:.3f} beats {current:.3f} (+{min_gain:.3f} required)"
    return False, f"success {candidate:.3f} does not beat {current:.3f} (+{min_gain:.3f} required)"


class Deployer:
    """Applies trained-model events to a registry and keeps the record on disk."""

    def __init__(
        self, registry: ModelRegistry, state_file: Path, *, alias: str, mode: str = "strict", min_gain: float = 0.0
    ) -> None:
        self.registry = registry
        self.state_file = state_file
        self.alias = alias
        self.mode = mode
        self.min_gain = min_gain
        self.record = self._read()
        self.restore()
        registry.on_change = self._write

    def _read(self) -> DeploymentRecord:
        if not self.state_file.exists():
            return DeploymentRecord()
        return DeploymentRecord(**json.loads(self.state_file.read_text()))

    def _write(self) -> None:
        self.record.adapters = dict(self.registry.adapters)
        self.record.aliases = dict(self.registry.aliases)
        self.record.history = {k: list(v) for k, v in self.registry.history.items()}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self.record), indent=2))
        temporary.replace(self.state_file)

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

    def apply(self, adapter: str, path: str, success: float, baseline_success: float | None) -> Decision:
        """Loads the adapter, gates it, moves the alias if it passes. Idempotent per adapter.

        Raises:
            InvalidArgument: the adapter cannot be loaded (what is served stays served).
        """
        if adapter in self.record.decisions:
            return Decision(**self.record.decisions[adapter])  # a redelivery: already decided
        self.registry.load(adapter, path)
        self.record.success[adapter] = success
        if baseline_success is not None:
            self.record.success.setdefault(self.registry.base_name, baseline_success)
        current_target = self.registry.aliases.get(self.alias, self.registry.base_name)
        deploy, reason = gate(success, self.record.success.get(current_target), mode=self.mode, min_gain=self.min_gain)
        previous = self.registry.set_alias(self.alias, adapter) if deploy else current_target
        decision = Decision(deploy, self.alias, adapter, previous, reason)
        self.record.decisions[adapter] = asdict(decision)
        self._write()
        log.info("adapter %s: %s (%s)", adapter, "deployed" if deploy else "kept as candidate", reason)
        return decision
