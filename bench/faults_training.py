"""The training side of bench/faults.py: approved traces start builds and jobs; the trainer is killed mid-job.

Every `APPROVE_EVERY`-th trace of the burst carries a passed verdict, which the dataset's rules approve
(as the agent's verified traces are); with `TRAINING_ENV` a build starts as soon as `build_threshold`
approved traces wait (no debounce), so builds and training jobs run while services are killed. Jobs
train the tiny test model for `max_steps` with a checkpoint every `save_steps`, unevaluated (no agent
address), so a job lasts long enough to be killed after its first checkpoint and resumes from it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracewheel.core.dataset_layout import MANIFEST_FILE

APPROVE_EVERY = 20
TRAINING_ENV = {
    "TW_DATASET_BUILD_THRESHOLD": "25",
    "TW_DATASET_BUILD_DEBOUNCE_S": "0",
    "TW_DATASET_EVAL_RATIO": "0",
    "TW_TRAINER_AGENT_ADDRESS": "",  # adapters are published unevaluated: the bench measures faults, not quality
    "TW_RECIPE_MAX_STEPS": "100",  # ~45 s a job on 2 loaded cores: killed after its first checkpoint (10)
    "TW_RECIPE_SAVE_STEPS": "10",
    "TW_RECIPE_EVAL": "false",
    "TW_RECIPE_GRADIENT_ACCUMULATION_STEPS": "1",
}
_RESUMED = re.compile(r"resuming from \S*checkpoint-(\d+)")
_FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "SUPERSEDED"}


def approved(n: int) -> bool:
    """Whether trace `n` of the burst carries a passed verdict (approved by the dataset's rules)."""
    return n % APPROVE_EVERY == 0


def jobs(home: Path) -> list[dict[str, Any]]:
    """The trainer's job records (its jobs.json); [] before the first job."""
    try:
        return json.loads((home / "trainer" / "jobs.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def _checkpoint(home: Path) -> Path | None:
    found = sorted((home / "adapters").glob("*/checkpoints/checkpoint-*"))
    return found[0] if found else None


def kill_trainer_mid_job(home: Path, trainer_pid: Callable[[], int], timeout_s: float) -> tuple[int, str]:
    """SIGKILLs the trainer once a job has saved a checkpoint (or after `timeout_s` without one).

    Returns:
        The pid killed and the job id it was training ("" when no checkpoint appeared in time).
    """
    deadline = time.monotonic() + timeout_s
    checkpoint = _checkpoint(home)
    while checkpoint is None and time.monotonic() < deadline:
        time.sleep(0.05)  # a tiny model's job saves every few seconds: poll finely to land mid-job
        checkpoint = _checkpoint(home)
    pid = trainer_pid()
    os.kill(pid, signal.SIGKILL)
    return pid, checkpoint.parent.parent.name if checkpoint else ""


def wait_for_jobs(home: Path, timeout_s: float) -> bool:
    """Waits until every job has ended; False when some had not after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() < started + timeout_s:
        states = [job["state"] for job in jobs(home)]
        if all(state in _FINAL for state in states) and (states or time.monotonic() > started + 60):
            return True
        time.sleep(1)
    return False


def _resumed_steps(home: Path, job_id: str) -> list[int]:
    try:
        text = (home / "adapters" / job_id / "train.log").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [int(step) for step in _RESUMED.findall(text)]


def report(home: Path, up_log: Path, killed_job: str) -> None:
    """Prints builds finished and failed, jobs by state, and whether the killed job resumed and finished."""
    log = up_log.read_text(encoding="utf-8", errors="replace")
    built = len(list((home / "datasets").glob(f"*/{MANIFEST_FILE}")))
    failed_builds = log.count("triggered dataset build failed")
    states = Counter(job["state"] for job in jobs(home))
    print("\n## builds and jobs started by the burst's approved traces during the kills")
    print("| builds finished | builds failed | jobs started | succeeded | failed | other states |")
    print("|---|---|---|---|---|---|")
    other = {state: n for state, n in states.items() if state not in ("SUCCEEDED", "FAILED")}
    print(
        f"| {built} | {failed_builds} | {sum(states.values())} | {states['SUCCEEDED']} | {states['FAILED']} "
        f"| {other or '-'} |"
    )
    record = next((job for job in jobs(home) if job["id"] == killed_job), None)
    print("\n## trainer SIGKILLed mid-job (after the job's first checkpoint)")
    if record is None:
        print("no job had saved a checkpoint in time: the trainer was killed without one (nothing to resume)")
        return
    steps = _resumed_steps(home, killed_job)
    print("| job | resumed from step (its train.log) | final state | error |\n|---|---|---|---|")
    print(f"| {killed_job} | {steps or 'not resumed'} | {record['state']} | {record['error'][:120] or '-'} |")
