"""Evaluations kept on disk, so a model is scored once per suite and settings.

The trainer asks for the base model's held-out baseline at every job, and `tracewheel demo`
asks for it when it starts; on 2 CPU cores one evaluation takes minutes, so it is run once
and read back after that. The key covers everything that changes a score: the model name, the
suite's task ids and prompts, and the loop's settings. Aliases are never cached (their target
moves); adapter names are unique per training job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from tracewheel.agent.conversation import LoopOptions
from tracewheel.agent.suites.spec import Python
from tracewheel.agent.tasks import Task
from tracewheel.agent.tasks.suites import SHOP_CHECK
from tracewheel.core.evaluation import EvalResult
from tracewheel.core.files import write_json_atomically

log = logging.getLogger(__name__)


def cache_key(model: str, tasks: list[Task], config: LoopOptions) -> str:
    """A digest of what decides an evaluation's outcome (of `config`, the loop's options only: the
    service passes its settings, whose other fields do not change a score)."""
    material: dict[str, Any] = {
        "model": model,
        "tasks": [(t.task_id, t.prompt, t.answer) for t in tasks],
        "config": config.model_dump(mode="json", include=set(LoopOptions.model_fields)),
    }
    checks = [_check_material(t) for t in tasks]
    if any(checks):  # a suite file's checkers and task options; the shop's follow from its ids and prompts
        material["checks"] = checks
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _check_material(task: Task) -> Any:
    if task.check is None or (isinstance(task.check, Python) and task.check.entry_point == SHOP_CHECK):
        return None
    return [task.check.model_dump(mode="json"), task.split, task.tools, task.mcp_servers, task.allowed_hosts]


class EvalCache:
    """One JSON file per key under `directory`, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> EvalResult | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if "results" in data:  # written before EvalResult: the same task rows under another key
                data = {"model": data["model"], "suite": data["suite"], "task_results": data["results"]}
            return EvalResult.model_validate(data)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:  # a damaged entry is measured again
            log.warning("ignoring unreadable cached evaluation %s: %s", path, exc)
            return None

    def put(self, key: str, result: EvalResult) -> None:
        write_json_atomically(self._path(key), result.model_dump(mode="json"))
