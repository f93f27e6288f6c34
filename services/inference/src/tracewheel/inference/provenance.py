"""A models.v1.trained event is a claim; inference checks it against what the trainer recorded.

The event names an adapter folder and carries its evaluation and the base model's. Inference
deploys on it only when
- the folder lies inside the adapters folder it was configured with (the trainer's, shared:
  `TW_INFERENCE_ADAPTERS_DIR`), symlinks followed, no `..`;
- its adapter_config.json records a base model, the one this server serves
  (`adapters.check_base_model`: by name, so a model mounted elsewhere is the same model);
- the evaluation and the baseline in the event equal the trainer's record, the job's `eval.json`
  beside the adapter (`core.artifacts`); with no record, the event carries no evaluation.
Otherwise the event is refused with the reason (`UnverifiedAdapter`), which the deployer records
as the adapter's decision: a forged event changes nothing that is served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tracewheel.core.artifacts import EVAL_FILE, path_inside, read_job_evaluation
from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult
from tracewheel.inference.adapters import check_base_model


class UnverifiedAdapter(InvalidArgument):
    """The event's adapter or evaluation does not match what the trainer recorded."""


def _same(claimed: EvalResult, recorded: EvalResult) -> bool:
    # JSON form: NaN figures compare equal there, as they were written
    return claimed.model_dump(mode="json") == recorded.model_dump(mode="json")


def _rate(result: EvalResult | None) -> str:
    return "none" if result is None else f"success {result.success_rate:.3f} on {result.tasks} tasks"


@dataclass(frozen=True)
class Provenance:
    """Where trained adapters must come from, and the base model they must be trained on."""

    adapters_dir: Path
    base_model: str  # the served model's folder or id

    def verify(self, path: str, evaluation: EvalResult | None, baseline: EvalResult | None) -> Path:
        """Returns the adapter folder (resolved) when the claim matches the trainer's record.

        Args:
            path: the adapter folder the event names.
            evaluation: the adapter's evaluation in the event (None: the event carries none).
            baseline: the base model's evaluation in the event (None: none).

        Raises:
            UnverifiedAdapter: why the event is not trusted.
        """
        try:
            adapter = path_inside(self.adapters_dir, path, "adapter")
        except InvalidArgument as exc:
            raise UnverifiedAdapter(str(exc)) from None
        self._check_base_model(adapter)
        try:
            record = read_job_evaluation(adapter.parent)
        except (OSError, ValueError, ValidationError) as exc:
            raise UnverifiedAdapter(f"the trainer's record {adapter.parent / EVAL_FILE} is unreadable: {exc}") from None
        if record is None:
            if evaluation is not None or baseline is not None:
                raise UnverifiedAdapter(
                    f"the event carries an evaluation ({_rate(evaluation)}) but the trainer recorded none "
                    f"({adapter.parent / EVAL_FILE} does not exist)"
                )
            return adapter
        for what, claimed, recorded in (
            ("evaluation", evaluation, record.metrics),
            ("baseline", baseline, record.baseline_metrics),
        ):
            if claimed is None or not _same(claimed, recorded):
                raise UnverifiedAdapter(
                    f"the event's {what} ({_rate(claimed)}) is not the trainer's record in "
                    f"{adapter.parent / EVAL_FILE} ({_rate(recorded)})"
                )
        return adapter

    def _check_base_model(self, adapter: Path) -> None:
        config_file = adapter / "adapter_config.json"
        try:
            trained_on = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError):
            raise UnverifiedAdapter(f"{adapter} has no readable adapter_config.json") from None
        if not isinstance(trained_on, str) or not trained_on:
            raise UnverifiedAdapter(f"{config_file} records no base model (base_model_name_or_path)")
        try:
            check_base_model(adapter, self.base_model)
        except InvalidArgument as exc:
            raise UnverifiedAdapter(str(exc)) from None
