"""The deployment gate on pairs of evaluations: each mode, its reasons, and the task-by-task split."""

from __future__ import annotations

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.paired import PairedSplit
from tracewheel.inference.gate import DeployGate

STRICT, PAIRED, ALWAYS = DeployGate("strict"), DeployGate("paired"), DeployGate("always")


def rate(success: float) -> EvalResult:
    """An evaluation that gives its figures only (no task list)."""
    return EvalResult(success_rate=success)


def solved(ids: str, tasks: int = 20, suite: str = "heldout") -> EvalResult:
    """An evaluation of `tasks` tasks on `suite` in which exactly the tasks `ids` passed."""
    passed = ids.split()
    failed = [f"t{i}" for i in range(1, 2 * tasks + 1) if f"t{i}" not in passed][: tasks - len(passed)]
    results = [TaskResult(task_id=t, passed=True) for t in passed] + [
        TaskResult(task_id=t, passed=False) for t in failed
    ]
    return EvalResult(model="m", suite=suite, task_results=results)


def test_gate_compares_with_a_margin() -> None:
    assert STRICT.decide(rate(0.5), rate(0.1)).deploy
    assert not STRICT.decide(rate(0.5), rate(0.5)).deploy
    assert not DeployGate("strict", min_gain=0.1).decide(rate(0.55), rate(0.5)).deploy
    assert not STRICT.decide(rate(0.9), None).deploy
    assert ALWAYS.decide(rate(0.0), rate(0.9)).deploy


def test_the_paired_gate_counts_tasks_won_and_lost() -> None:
    base = solved("t1")
    # six tasks won, one lost (a demo round 1): p = 8/128 = 0.0625
    round_1 = solved("t2 t3 t4 t5 t6 t7")
    decision = PAIRED.decide(round_1, base)
    deploy, reason = decision.deploy, decision.reason
    assert not deploy and "won 6 and lost 1 of 20 tasks" in reason and "p 0.062 (at most 0.05 required)" in reason
    assert DeployGate("paired", max_p=0.1).decide(round_1, base).deploy
    # a higher rate from a split that is mostly churn does not pass; strict would deploy it
    churn = solved("t1 t2 t3 t4 t5 t6 t7")
    shuffled = solved("t1 t8 t9 t10 t11 t12 t13 t14")
    assert STRICT.decide(shuffled, churn).deploy
    assert not DeployGate("paired", max_p=0.25).decide(shuffled, churn).deploy  # won 7, lost 6: p 0.5
    # no task differs: no evidence
    assert not DeployGate("paired", max_p=1.0).decide(solved("t1 t2"), solved("t2 t1")).deploy


def test_the_paired_gate_refuses_what_it_cannot_compare() -> None:
    decision = PAIRED.decide(solved("t1 t2"), rate(0.0))
    deploy, reason = decision.deploy, decision.reason
    assert not deploy and "the current model's evaluation does not list them" in reason
    decision = PAIRED.decide(rate(0.5), solved(""))
    deploy, reason = decision.deploy, decision.reason
    assert not deploy and "the candidate's evaluation does not list them" in reason
    decision = PAIRED.decide(solved("t1 t2 t3", tasks=10), solved("t1"))
    deploy, reason = decision.deploy, decision.reason
    assert not deploy and "different suites ('heldout', 10 tasks against 'heldout', 20 tasks)" in reason


def test_each_mode_names_the_figures_and_carries_the_split_when_comparable() -> None:
    base, candidate = solved("t1 t2"), solved("t1 t3 t4")
    split = PairedSplit(won=2, lost=1, both=1)

    strict = STRICT.decide(candidate, base)
    assert strict.deploy and strict.reason == "success 0.150 beats 0.100 (+0.000 required)" and strict.split == split
    worse = DeployGate("strict", min_gain=0.1).decide(candidate, base)
    assert not worse.deploy and worse.reason == "success 0.150 does not beat 0.100 (+0.100 required)"

    paired = DeployGate("paired", max_p=0.5).decide(candidate, base)
    assert paired.deploy and paired.split == split
    assert paired.reason == (
        "won 2 and lost 1 of 20 tasks against the current model: one-sided sign test p 0.500 (at most 0.5 required)"
    )

    always = ALWAYS.decide(candidate, base)
    assert always.deploy and always.reason == "gate disabled (always deploy)" and always.split == split
    assert ALWAYS.decide(candidate, None).split is None  # nothing to compare with
    assert STRICT.decide(rate(0.2), rate(0.1)).split is None  # figures alone: no task list


def test_no_evaluation_of_the_current_model_keeps_the_alias() -> None:
    for gate in (STRICT, PAIRED):
        decision = gate.decide(solved("t1"), None)
        assert not decision.deploy
        assert decision.reason == "no evaluation of the current model to compare with; not deploying"


def test_the_rule_in_words() -> None:
    assert DeployGate("strict", min_gain=0.05).describe() == (
        "strict: the success rate must beat the current model's by more than 0.05"
    )
    assert "p <= 0.1" in DeployGate("paired", max_p=0.1).describe()
    assert ALWAYS.describe() == "always: deploys without comparing"


def test_the_strict_gate_does_not_compare_rates_of_different_suites() -> None:
    team, shop = solved("t1 t2 t3", suite="team:heldout"), solved("t1", suite="heldout")
    decision = STRICT.decide(team, shop)
    assert not decision.deploy and "different suites (the candidate on 'team:heldout'" in decision.reason
    assert STRICT.decide(team, solved("t1", suite="team:heldout")).deploy
    assert ALWAYS.decide(team, shop).deploy
