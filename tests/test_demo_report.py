"""The demo report's per-template table: rounds side by side, missing templates and rounds marked."""

from __future__ import annotations

import json

from tracewheel.cli.demo_report import (
    RoundRow,
    evaluation_of,
    paired_markdown,
    rounds_json,
    rounds_markdown,
    tasks_markdown,
    template_markdown,
    write_report,
)
from tracewheel.core.evaluation import EvalResult, TaskResult


def test_per_template_success_is_tabled_by_round() -> None:
    rows = [
        RoundRow(0, "base", EvalResult(success_rate=0.1, success_by_template={"price_lookup": 0.5}), 60, "base"),
        RoundRow(1, "job-1", EvalResult(success_by_template={"price_lookup": 1.0, "order_form": 0.25}), 900, "yes"),
        RoundRow(2, "job-2", None, 0, "failed (x)"),
    ]
    assert template_markdown(rows)[-3:] == [
        "|---|---|---|---|",
        "| price_lookup | 50% | 100% | - |",
        "| order_form | - | 25% | - |",
    ]
    assert "## Held-out success per task template" in rounds_markdown(rows, {}, [])


def test_no_template_figures_no_section() -> None:
    rows = [RoundRow(0, "base", EvalResult(success_rate=0.1), 60, "base")]
    assert template_markdown(rows) == [] and "per task template" not in rounds_markdown(rows, {}, [])


def solved(ids: str, tasks: int = 10) -> EvalResult:
    passed = set(ids.split())
    return EvalResult(task_results=[TaskResult(task_id=f"t{i}", passed=f"t{i}" in passed) for i in range(1, tasks + 1)])


def test_rounds_are_compared_task_by_task_with_a_sign_test() -> None:
    rows = [
        RoundRow(0, "base", solved("t1"), 60, "base"),
        RoundRow(1, "job-1", solved("t1 t2 t3 t4 t5 t6"), 900, "yes"),
        RoundRow(2, "job-2", solved("t2 t3 t7"), 300, "no (x)"),
    ]
    assert paired_markdown(rows)[-2:] == [
        "| 1 | 0 | 5 | 0 | 1 | 0.06 |",  # 2 / 2**5
        "| 2 | 1 | 1 | 4 | 2 | 0.38 |",  # 2 * (1 + 5) / 2**5
    ]
    assert "won and lost" in rounds_markdown(rows, {}, [])


def test_rounds_without_task_ids_are_left_out() -> None:
    rows = [
        RoundRow(0, "base", EvalResult(success_rate=0.1), 60, "base"),  # evaluated before task results were kept
        RoundRow(1, "job-1", solved("t1"), 900, "yes"),
        RoundRow(2, "job-2", None, 0, "failed (x)"),
        # an evaluator that gave figures only
        RoundRow(3, "job-3", EvalResult(success_rate=0.5, tasks=10), 900, "yes"),
    ]
    assert paired_markdown(rows) == [] and "won and lost" not in rounds_markdown(rows, {}, [])


def test_a_step_recorded_in_the_demo_state_reads_back_as_its_evaluation() -> None:
    baseline = solved("t1 t2")
    step = {**baseline.model_dump(mode="json"), "wall_s": 60.0, "trace_ids": ["x"]}
    assert evaluation_of(step) == baseline
    assert evaluation_of({}) is None  # a failed round
    # a state written before task results were kept: figures only, so no task-by-task comparison
    older = evaluation_of({"success_rate": 0.5, "tasks": 4, "passed_task_ids": ["t1", "t2"], "wall_s": 1.0})
    assert older == EvalResult(success_rate=0.5, tasks=4) and older.passed_tasks is None


def test_the_report_names_the_suite_and_demo_suite_reads_a_file(tmp_path) -> None:
    from tracewheel.cli.demo import demo_suite

    assert "Evaluated on `team:heldout`" in rounds_markdown([], {}, [], "team:heldout")
    path = tmp_path / "mine.yaml"
    path.write_text("name: team\ntasks:\n  - {id: a, prompt: p, check: {kind: contains, value: x}}\n")
    assert demo_suite(str(path)) == ("team", path)
    assert demo_suite("team") == ("team", None) and demo_suite(None) == ("", None)


def test_tasks_are_tabled_by_round_with_pipes_escaped() -> None:
    odd = EvalResult(task_results=[TaskResult(task_id="a|b", passed=True, template="price lookup", verdict="passed")])
    rows = [RoundRow(0, "base", solved("t1", tasks=2), 60, "base"), RoundRow(1, "job-1", odd, 9, "yes")]
    assert tasks_markdown(rows)[-4:] == [
        "|---|---|---|---|",
        "| t1 |  | passed | - |",
        "| t2 |  | failed | - |",
        "| a\\|b | price lookup | - | passed |",
    ]
    assert tasks_markdown([RoundRow(0, "base", EvalResult(success_rate=0.5), 1, "base")]) == []


def test_the_report_folder_holds_markdown_plot_and_results(tmp_path) -> None:
    rows = [RoundRow(0, "base", solved("t1"), 60, "base"), RoundRow(1, "job-1", None, 5, "failed: x")]
    paths = write_report(tmp_path, rows, "# report\n", rounds_json(rows))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "result.json", "rounds.png"]
    assert paths["markdown"].read_text() == "# report\n" and paths["plot"].read_bytes()[:4] == b"\x89PNG"
    result = json.loads(paths["result"].read_text())
    assert [r["deployed"] for r in result] == ["base", "failed: x"] and result[1]["evaluation"] is None
    assert EvalResult.model_validate(result[0]["evaluation"]) == rows[0].metrics


def test_a_reason_with_a_pipe_stays_in_its_cell() -> None:
    rows = [RoundRow(1, "job|1", None, 5, "no: success 0.1 | 0.2\nbelow")]
    (line,) = [line for line in rounds_markdown(rows, {}, []).splitlines() if line.startswith("| 1 ")]
    assert line.endswith("| job\\|1 | - | - | - | - | 0 | 5 | no: success 0.1 \\| 0.2 below |")
