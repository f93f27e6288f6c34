"""Artifacts on the shared volume, as the trainer writes them and inference and the trainer check them.

A training job's folder is `<adapters dir>/<job id>/`: the adapter in `adapter/` and, once it is
evaluated, `eval.json` (`JobEvaluation`: the adapter's and its base model's `EvalResult`s in
their JSON form). An event names such paths; a consumer trusts a path only inside the root it
was configured with (`path_inside`), never a claim alone.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tracewheel.core.errors import InvalidArgument
from tracewheel.core.evaluation import EvalResult

ADAPTER_DIR = "adapter"
EVAL_FILE = "eval.json"


class JobEvaluation(BaseModel):
    """A job's held-out evaluation, as `eval.json` holds it.

    Attributes:
        metrics: the adapter's.
        baseline_metrics: its base model's, on the same suite.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: EvalResult
    baseline_metrics: EvalResult


def read_job_evaluation(job_dir: Path) -> JobEvaluation | None:
    """The evaluation recorded in a job's folder (None: not evaluated).

    Raises:
        pydantic.ValidationError: the file is not an evaluation.
    """
    path = job_dir / EVAL_FILE
    if not path.exists():
        return None
    return JobEvaluation.model_validate_json(path.read_text(encoding="utf-8"))


def path_inside(root: Path, path: str | Path, what: str) -> Path:
    """`path` resolved (symlinks followed), when it is absolute, names no `..` and lies inside `root`.

    Raises:
        InvalidArgument: it does not; the message names `what`, the path and the root.
    """
    given = Path(path)
    if not given.is_absolute() or ".." in given.parts:
        raise InvalidArgument(f"{what} {path!s} must be an absolute path without '..'")
    resolved, inside = given.resolve(), root.resolve()
    if not resolved.is_relative_to(inside):
        raise InvalidArgument(f"{what} {path!s} lies outside {inside} (symlinks followed)")
    return resolved
