"""What a training Job on the cluster is doing, from its status and its pods (domain: plain dicts in).

The objects are the API server's JSON (camelCase), as a watch delivers them. `observe` turns
one Job and its pods into a `ClusterPhase` and, when something is wrong, the pods' reason in
words (OOMKilled with its exit code, Evicted, an image that cannot be pulled, a pod no node can
take for lack of a GPU), so a failed training job says why. `PendingClock` decides when a Job
that cannot start has waited long enough: a missing GPU or volume is an error, not a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tracewheel.trainer.jobs import JobState

# waiting reasons that do not clear by themselves (the pod never starts until someone acts)
STUCK_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class ClusterPhase(StrEnum):
    PENDING = "pending"  # no pod running yet: scheduling, pulling, or retrying after a failed pod
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"  # the Job is gone (deleted by someone, or garbage-collected)


@dataclass(frozen=True)
class Observation:
    """One look at a Job: its phase and, when a pod has a problem, what it is."""

    phase: ClusterPhase
    reason: str = ""  # why it failed, or why it cannot start (a pod's problem)
    stuck: bool = False  # PENDING for a reason that will not clear by itself


def state_from_k8s_status(status: dict[str, Any] | None, suspended: bool = False) -> tuple[JobState, str]:
    """Our state (and a failure reason) for a batch/v1 Job's `.status`.

    Complete -> SUCCEEDED; Failed (BackoffLimitExceeded, DeadlineExceeded, ...) -> FAILED with
    its reason and message; suspended or not started -> QUEUED; started -> RUNNING (which
    includes a pod still waiting for a GPU node).
    Deleting the Job is how we cancel, so CANCELLED is never read from the cluster.
    """
    status = status or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions:
        return JobState.SUCCEEDED, ""
    if "Failed" in conditions:
        failed = conditions["Failed"]
        return JobState.FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": ")
    if suspended or "Suspended" in conditions:
        return JobState.QUEUED, ""
    # FailureTarget / SuccessCriteriaMet (k8s >= 1.31) precede Failed / Complete while pods terminate
    if status.get("active") or status.get("startTime") or {"FailureTarget", "SuccessCriteriaMet"} & conditions.keys():
        return JobState.RUNNING, ""
    return JobState.QUEUED, ""


def _terminated(container: dict[str, Any]) -> str:
    for key in ("state", "lastState"):
        done = (container.get(key) or {}).get("terminated")
        if done and done.get("exitCode", 0) != 0:
            what = f"{done.get('reason') or 'Error'} (exit code {done.get('exitCode')})"
            message = (done.get("message") or "").strip()
            return f"{what}: {message}" if message else what
    return ""


def pod_problem(pod: dict[str, Any]) -> tuple[str, bool]:
    """What is wrong with one pod, in words ("" when nothing), and whether it will not clear by itself."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    if status.get("reason") == "Evicted":
        return f"pod {name} was evicted: {status.get('message', '').strip()}".rstrip(": "), False
    for container in status.get("containerStatuses") or []:
        if failed := _terminated(container):
            return f"pod {name}: {failed}", False
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_WAITING:
            return f"pod {name}: {waiting['reason']}: {waiting.get('message', '').strip()}".rstrip(": "), True
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            return f"pod {name} cannot be scheduled ({reason}): {condition.get('message', '').strip()}", True
    return "", False


def _newest_first(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


def observe(job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Observation:
    """The phase of a Job (None: it no longer exists) with its pods' problem, newest pod first."""
    if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return Observation(ClusterPhase.DELETED, "the Job was deleted outside the trainer")
    problems = [found for pod in _newest_first(pods) if (found := pod_problem(pod))[0]]
    state, reason = state_from_k8s_status(job.get("status"), bool((job.get("spec") or {}).get("suspend")))
    if state == JobState.SUCCEEDED:
        return Observation(ClusterPhase.SUCCEEDED)
    if state == JobState.FAILED:
        details = "; ".join(dict.fromkeys(problem for problem, _ in problems))
        return Observation(ClusterPhase.FAILED, f"{reason}; {details}" if details else reason)
    if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return Observation(ClusterPhase.RUNNING)
    if problems:
        problem, stuck = problems[0]
        return Observation(ClusterPhase.PENDING, problem, stuck)
    return Observation(ClusterPhase.PENDING)


class PendingClock:
    """Gives up on a Job that stays stuck (no GPU node, a missing volume or image) for `timeout_s`."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._since: float | None = None

    def expired(self, observation: Observation, now: float) -> bool:
        """True once `observation` has been stuck for `timeout_s` without a break."""
        if not observation.stuck:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.timeout_s
