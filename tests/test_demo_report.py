"""The demo report's per-template table: rounds side by side, missing templates and rounds marked."""

from __future__ import annotations

from tracewheel.cli.demo_report import RoundRow, paired_markdown, rounds_markdown, template_markdown


def test_per_template_success_is_tabled_by_round() -> None:
    rows = [
        RoundRow(0, "base", {"success_rate": 0.1, "success_by_template": {"price_lookup": 0.5}}, 60, "base"),
        RoundRow(1, "job-1", {"success_by_template": {"price_lookup": 1.0, "order_form": 0.25}}, 900, "yes"),
        RoundRow(2, "job-2", {}, 0, "failed (x)"),
    ]
    assert template_markdown(rows)[-3:] == [
        "|---|---|---|---|",
        "| price_lookup | 50% | 100% | - |",
        "| order_form | - | 25% | - |",
    ]
    assert "## Held-out success per task template" in rounds_markdown(rows, {}, [])


def test_no_template_figures_no_section() -> None:
    rows = [RoundRow(0, "base", {"success_rate": 0.1}, 60, "base")]
    assert template_markdown(rows) == [] and "per task template" not in rounds_markdown(rows, {}, [])


def solved(ids: str, tasks: int = 10) -> dict:
    passed = ids.split()
    return {"success_rate": len(passed) / tasks, "tasks": tasks, "passed_task_ids": passed}


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
        RoundRow(0, "base", {"success_rate": 0.1}, 60, "base"),  # evaluated before passed_task_ids existed
        RoundRow(1, "job-1", solved("t1"), 900, "yes"),
        RoundRow(2, "job-2", {}, 0, "failed (x)"),
        # an evaluator that did not fill the ids: an empty list beside a rate above zero
        RoundRow(3, "job-3", {"success_rate": 0.5, "tasks": 10, "passed_task_ids": []}, 900, "yes"),
    ]
    assert paired_markdown(rows) == [] and "won and lost" not in rounds_markdown(rows, {}, [])
