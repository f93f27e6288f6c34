"""A Job and its pods -> the phase the trainer acts on, with the pods' reason (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from tracewheel.trainer.k8s_status import ClusterPhase, Observation, PendingClock, observe, pod_problem

JOB: dict[str, Any] = {"metadata": {"name": "tw-train-j"}, "spec": {}, "status": {}}


def job(**status: Any) -> dict[str, Any]:
    return {**JOB, "status": status}


def pod(name: str, created: str = "2026-12-01T10:00:00Z", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def terminated(reason: str, code: int, message: str = "") -> dict[str, Any]:
    state = {"terminated": {"reason": reason, "exitCode": code, "message": message}}
    return {"containerStatuses": [{"name": "trainer", "state": state}]}


FAILED = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "3 pods"}]}
UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        }
    ],
}


@pytest.mark.parametrize(
    ("the_job", "pods", "expected"),
    [
        (None, [], Observation(ClusterPhase.DELETED, "the Job was deleted outside the trainer")),
        (job(), [], Observation(ClusterPhase.PENDING)),
        (job(active=1), [pod("p", phase="Running")], Observation(ClusterPhase.RUNNING)),
        (job(conditions=[{"type": "Complete", "status": "True"}]), [], Observation(ClusterPhase.SUCCEEDED)),
        (
            job(**FAILED),
            [pod("p", phase="Failed", **terminated("OOMKilled", 137))],
            Observation(ClusterPhase.FAILED, "BackoffLimitExceeded: 3 pods; pod p: OOMKilled (exit code 137)"),
        ),
        (
            job(**FAILED),
            [pod("p", phase="Failed", **terminated("Error", 2, "error: dataset has no train.jsonl"))],
            Observation(
                ClusterPhase.FAILED,
                "BackoffLimitExceeded: 3 pods; pod p: Error (exit code 2): error: dataset has no train.jsonl",
            ),
        ),
        (
            job(active=1),
            [pod("p", **UNSCHEDULABLE)],
            Observation(
                ClusterPhase.PENDING,
                "pod p cannot be scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                stuck=True,
            ),
        ),
        (
            job(active=1),
            [
                pod("old", "2026-12-01T10:00:00Z", phase="Failed", reason="Evicted", message="node low on memory"),
                pod("new", "2026-12-01T10:05:00Z", phase="Pending"),
            ],
            Observation(ClusterPhase.PENDING, "pod old was evicted: node low on memory"),
        ),
    ],
)
def test_a_job_and_its_pods_give_a_phase_and_a_reason(
    the_job: dict[str, Any] | None, pods: list[dict[str, Any]], expected: Observation
) -> None:
    assert observe(the_job, pods) == expected


def test_a_job_being_deleted_counts_as_deleted() -> None:
    deleting = {**JOB, "metadata": {"name": "tw-train-j", "deletionTimestamp": "2026-12-01T10:00:00Z"}}
    assert observe(deleting, []).phase == ClusterPhase.DELETED


def test_an_image_that_cannot_be_pulled_is_stuck() -> None:
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "tracewheel/trainer-gpu"'}}
    problem, stuck = pod_problem(pod("p", containerStatuses=[{"name": "trainer", "state": waiting}]))
    assert stuck and problem == 'pod p: ImagePullBackOff: Back-off pulling image "tracewheel/trainer-gpu"'


def test_the_pending_clock_runs_only_while_a_job_stays_stuck() -> None:
    clock = PendingClock(timeout_s=60)
    stuck = Observation(ClusterPhase.PENDING, "no GPU", stuck=True)
    assert not clock.expired(stuck, now=0)
    assert not clock.expired(stuck, now=59)
    assert not clock.expired(Observation(ClusterPhase.RUNNING), now=70)  # it started: the clock resets
    assert not clock.expired(stuck, now=100)
    assert clock.expired(stuck, now=160)
