"""Warm starts: a job may begin from the adapter that is deployed now instead of from the base model.

Round N of the flywheel trains on round N-1's rows plus the new ones. From the base model that is
the whole recipe again (three epochs of every row); from the deployed adapter, which has already
fitted the old rows, a shorter schedule (`Recipe.warm_start_epochs`) over the same dataset
carries it on. The trainer learns what is deployed from `models.v1.deployed` (inference's gate
or a person's SetAlias/Rollback), recorded here per alias, so a restart knows it too.

Which adapter a job starts from is decided once, when it starts running, and kept on the job
(`Job.init_adapter`): a job resumed after a crash continues from its own checkpoints with the
same provenance, whatever was deployed since. Only adapters this trainer produced qualify (their
job says which base model and dataset made them), and only when the job's dataset still holds
every row the adapter was trained on (trained_rows.py); anything else (the base model, an adapter
loaded by hand, another base model's, one trained on rows a curator has removed since) means a
cold start.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tracewheel.core.files import write_json_atomically
from tracewheel.trainer.data import DatasetError
from tracewheel.trainer.trained_rows import read_trained_rows, rows_missing

if TYPE_CHECKING:
    from tracewheel.trainer.jobs import Job

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class DeploymentLog:
    """Which adapter each alias serves, as the last `models.v1.deployed` said; one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(alias): str(name) for alias, name in data.items()}

    def record(self, alias: str, adapter_name: str) -> None:
        """Remembers that `alias` serves `adapter_name` ("" when it serves the base model)."""
        with self._lock:
            write_json_atomically(self.path, self._read() | {alias: adapter_name})

    def adapter_for(self, alias: str) -> str:
        """The adapter `alias` serves, "" for the base model or when nothing was deployed."""
        with self._lock:
            return self._read().get(alias, "")


def warm_start_adapter(job: Job, deployed: str, jobs: Iterable[Job]) -> str:
    """The adapter folder `job` starts from: the deployed adapter when one of `jobs` trained it on
    the same base model and its files are there; "" (train from the base model) otherwise."""
    if not deployed:
        return ""
    source = next((other for other in jobs if other.id == deployed), None)
    if source is None or not source.adapter_path:
        log.info("job %s starts cold: the deployed adapter %s was not trained here", job.id, deployed)
        return ""
    if source.base_model != job.base_model:
        log.info(
            "job %s starts cold: %s was trained on %s, not %s", job.id, deployed, source.base_model, job.base_model
        )
        return ""
    if not (Path(source.adapter_path) / ADAPTER_CONFIG).exists():
        log.warning("job %s starts cold: %s has no %s", job.id, source.adapter_path, ADAPTER_CONFIG)
        return ""
    trained = read_trained_rows(Path(source.adapter_path))
    if trained is not None:
        try:
            missing = rows_missing(trained, Path(job.dataset_path))
        except DatasetError as exc:
            log.warning("job %s starts cold: its dataset cannot be read (%s)", job.id, exc)
            return ""
        if missing:
            log.info(
                "job %s starts cold: %d of the %d rows %s was trained on are not in dataset %s (removed or "
                "edited since), and a warm start would keep what they taught",
                job.id,
                missing,
                len(trained),
                deployed,
                job.dataset_version,
            )
            return ""
    log.info("job %s starts from the deployed adapter %s", job.id, deployed)
    return source.adapter_path
