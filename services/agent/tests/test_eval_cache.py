"""Cached evaluations read back as the EvalResult that was stored, including entries of the older layout."""

from __future__ import annotations

import json
from pathlib import Path

from tracewheel.agent.eval_cache import EvalCache
from tracewheel.core.evaluation import EvalResult, TaskResult


def test_a_cached_evaluation_reads_back_the_same(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    result = EvalResult(model="base", suite="heldout", task_results=[TaskResult(task_id="t1", passed=True, tokens=9)])
    assert cache.get("k") is None
    cache.put("k", result)
    assert cache.get("k") == result


def test_entries_of_the_older_layout_and_damaged_ones(tmp_path: Path) -> None:
    row = {"task_id": "t1", "template": "price_lookup", "passed": False, "verdict": "failed", "detail": "", "steps": 2,
           "tool_calls": 1, "attempted_calls": 1, "valid_tool_calls": 1, "right_tool_calls": 1, "tokens": 5,
           "latency_s": 0.5, "trace_id": "trace-1"}  # fmt: skip
    older = {"model": "base", "suite": "heldout", "tasks": 1, "success_rate": 0.0, "mode": "agent", "results": [row]}
    (tmp_path / "old.json").write_text(json.dumps(older))
    (tmp_path / "bad.json").write_text("{not json")
    cache = EvalCache(tmp_path)
    read = cache.get("old")
    assert read is not None and read.passed_tasks == () and read.task_results == (TaskResult(**row),)
    assert cache.get("bad") is None  # measured again
