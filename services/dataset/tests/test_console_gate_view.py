"""The deployment pages' view of a gate decision: tasks won and lost, figures side by side."""

from __future__ import annotations

from tracewheel.core.evaluation import EvalResult, TaskResult
from tracewheel.core.paired import PairedSplit
from tracewheel.dataset.console.gate_view import compare_tasks, figure_rows, path_part, template_rows


def evaluation(model: str, solved: str, tasks: int = 6, listed: bool = True) -> EvalResult:
    passed = set(solved.split())
    results = [
        TaskResult(
            task_id=f"t{i}",
            passed=f"t{i}" in passed,
            template="price_lookup" if i % 2 else "order_form",
            verdict="passed" if f"t{i}" in passed else "failed",
            detail=f"{model} on t{i}",
            trace_id=f"trace-{model}-t{i}",
            steps=i,
        )
        for i in range(1, tasks + 1)
    ]
    result = EvalResult(model=model, suite="heldout", task_results=results)
    return result if listed else EvalResult(model=model, suite="heldout", tasks=tasks, success_rate=result.success_rate)


def test_won_and_lost_tasks_carry_both_runs_and_match_the_gates_split() -> None:
    candidate, compared = evaluation("a2", "t1 t3 t4 t5"), evaluation("tiny", "t1 t2")
    comparison = compare_tasks(candidate, compared)
    assert comparison is not None
    assert [p.task_id for p in comparison.won] == ["t3", "t4", "t5"]
    assert [p.task_id for p in comparison.lost] == ["t2"]
    assert comparison.both == 1
    counted = PairedSplit.of(candidate.passed_tasks or (), compared.passed_tasks or ())
    assert (len(comparison.won), len(comparison.lost), comparison.both) == (counted.won, counted.lost, counted.both)
    lost = comparison.lost[0]
    assert lost.template == "order_form"
    assert lost.candidate is not None and lost.compared is not None
    assert (lost.candidate.trace_id, lost.compared.trace_id) == ("trace-a2-t2", "trace-tiny-t2")
    assert (lost.candidate.passed, lost.compared.passed) == (False, True)


def test_no_task_list_when_an_evaluation_does_not_list_its_tasks() -> None:
    assert compare_tasks(evaluation("a2", "t1"), evaluation("tiny", "t1", listed=False)) is None
    assert compare_tasks(evaluation("a2", "t1", listed=False), evaluation("tiny", "t1")) is None
    nothing_solved = compare_tasks(evaluation("a2", ""), evaluation("tiny", ""))
    assert nothing_solved is not None and (nothing_solved.won, nothing_solved.lost, nothing_solved.both) == ([], [], 0)


def test_figures_and_templates_side_by_side() -> None:
    candidate, compared = evaluation("a2", "t1 t3 t4 t5"), evaluation("tiny", "t1 t2", tasks=4)
    figures = {row.label: (row.candidate, row.compared) for row in figure_rows(candidate, compared)}
    assert figures["success"] == ("66.7% (4/6)", "50.0% (2/4)")
    assert figures["tasks"] == ("6", "4") and figures["mean steps"] == ("3.5", "2.5")
    assert set(figures) >= {"valid tool calls", "right tool", "mean tokens", "suite"}
    templates = [(row.label, row.candidate, row.compared) for row in template_rows(candidate, compared)]
    assert templates == [("price_lookup", "100.0%", "50.0%"), ("order_form", "33.3%", "50.0%")]
    assert all(row.compared == "" for row in figure_rows(candidate, None))
    assert template_rows(None, None) == []


def test_a_name_is_one_path_segment() -> None:
    assert path_part("a/b <x>?") == "a%2Fb%20%3Cx%3E%3F"
